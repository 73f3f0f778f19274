//go:build !goexperiment.jsonv2

package main

// jsonv2Experiment says whether this build has GOEXPERIMENT=jsonv2 (see jsonv2.go).
const jsonv2Experiment = false
