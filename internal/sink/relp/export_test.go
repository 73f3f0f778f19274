package relp

// SetFirstTxnr makes new sessions start at txnr, for tests of the wrap from MaxTxnr to 1.
func (c *Client) SetFirstTxnr(txnr int) { c.firstTxnr = txnr }
