package main

import (
	"fmt"
	"io"
)

func deadletters(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "usage: handler deadletters list|show|replay|purge")
	return 2
}
