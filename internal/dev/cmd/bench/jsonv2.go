//go:build goexperiment.jsonv2

package main

import (
	"fmt"

	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
)

const jsonv2Experiment = true

// hecEnvelopeV2 is hecEnvelope for the v2 API: the event as a jsontext.Value, and omitzero,
// because under v2 omitempty no longer drops a zero number.
type hecEnvelopeV2 struct {
	Time       float64        `json:"time,omitzero"`
	Source     string         `json:"source,omitempty"`
	SourceType string         `json:"sourcetype"`
	Index      string         `json:"index,omitempty"`
	Fields     hecFields      `json:"fields"`
	Event      jsontext.Value `json:"event"`
}

func init() {
	v2Way = func(jc *jsonCorpus) jsonWay {
		const name = "c: encoding/json/v2 API, the same struct (case-insensitive names)"
		// Key casing differs between the flat and the ARM shape; v1 and goccy match names in
		// any case by default, v2 only when asked.
		opts := jsonv2.MatchCaseInsensitiveNames(true)
		return jsonWay{name: name, run: func(emit func([]byte)) (int, error) {
			for i, body := range jc.bodies {
				var a alertFields
				if err := jsonv2.Unmarshal(body, &a, opts); err != nil {
					return i, fmt.Errorf("%s: record %d: %w", name, i, err)
				}
				e := envelopeOf(&a, body)
				env := hecEnvelopeV2{Time: e.Time, Source: e.Source, SourceType: e.SourceType, Index: e.Index, Fields: e.Fields, Event: jsontext.Value(body)}
				out, err := jsonv2.Marshal(&env)
				if err != nil {
					return i, fmt.Errorf("%s: record %d: %w", name, i, err)
				}
				emit(out)
			}
			return len(jc.bodies), nil
		}}
	}
}
