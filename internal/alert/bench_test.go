package alert

import (
	"bytes"
	"testing"
)

func benchParse(b *testing.B, file string) {
	raw := readTestdata(b, file)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	cpu := startCPU()
	defer cpu.report(b)
	for b.Loop() {
		if _, err := Parse(raw, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// A flat export alert with a short entity list, the common case.
func BenchmarkParseFlatAlert(b *testing.B) { benchParse(b, "mdc_readme_alert.json") }

// The Elastic alert: 8.7 KB with 27 entities and many references, the heavy case.
func BenchmarkParseFlatAlertManyEntities(b *testing.B) { benchParse(b, "elastic_eventhub_alert.json") }

// The REST-shape alert.
func BenchmarkParseFlatAlertManyEntitiesSkipped(b *testing.B) {
	raw := readTestdata(b, "elastic_eventhub_alert.json")
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	cpu := startCPU()
	defer cpu.report(b)
	for b.Loop() {
		if _, err := (Options{SkipEntities: true}).Parse(raw, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseARMAlert(b *testing.B) { benchParse(b, "restapi_alert.json") }

func BenchmarkParseAssessment(b *testing.B) { benchParse(b, "elastic_eventhub_assessment.json") }

func hundredRecords(b *testing.B) []byte {
	files := []string{"mdc_readme_alert.json", "elastic_eventhub_alert.json", "restapi_alert.json", "elastic_eventhub_assessment.json"}
	var msg bytes.Buffer
	msg.WriteByte('[')
	for i := range 100 {
		if i > 0 {
			msg.WriteByte(',')
		}
		msg.Write(readTestdata(b, files[i%len(files)]))
	}
	msg.WriteByte(']')
	return msg.Bytes()
}

func BenchmarkSplit100(b *testing.B) {
	msg := hundredRecords(b)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	cpu := startCPU()
	defer cpu.report(b)
	for b.Loop() {
		recs, err := Split(msg)
		if err != nil || len(recs) != 100 {
			b.Fatal(len(recs), err)
		}
	}
}

func BenchmarkParseMessage100(b *testing.B) {
	msg := hundredRecords(b)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	cpu := startCPU()
	defer cpu.report(b)
	for b.Loop() {
		recs, err := ParseMessage(msg)
		if err != nil || len(recs) != 100 {
			b.Fatal(len(recs), err)
		}
	}
}

// What a CEF or LEEF formatter asks of a large alert.
func BenchmarkEntityValues(b *testing.B) {
	a := mustParse(b, readTestdata(b, "elastic_eventhub_alert.json")).Alert
	b.ReportAllocs()
	cpu := startCPU()
	defer cpu.report(b)
	for b.Loop() {
		_ = a.EntityValues("ip", "Address")
		_ = a.EntityValues("host", "HostName", "NetBiosName")
		_ = a.EntityValues("account", "Name")
		_ = a.EntityValues("process", "CommandLine")
		_ = a.EntityValues("filehash", "Value")
	}
}

// The same message for destinations that never read entities.
func BenchmarkParseMessage100SkipEntities(b *testing.B) {
	msg := hundredRecords(b)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	cpu := startCPU()
	defer cpu.report(b)
	for b.Loop() {
		recs, err := Options{SkipEntities: true}.ParseMessage(msg)
		if err != nil || len(recs) != 100 {
			b.Fatal(len(recs), err)
		}
	}
}

// What CEF asks of a large alert parsed without its entities: the five values, read straight
// from the list.
func BenchmarkScanEntities(b *testing.B) {
	rec, err := Options{SkipEntities: true}.Parse(readTestdata(b, "elastic_eventhub_alert.json"), 0)
	if err != nil || rec.Alert == nil {
		b.Fatal(err)
	}
	a := rec.Alert
	b.SetBytes(int64(len(a.EntitiesJSON)))
	b.ReportAllocs()
	cpu := startCPU()
	defer cpu.report(b)
	for b.Loop() {
		ents, ok := a.ScanEntities("Address", "HostName", "NetBiosName", "Name", "Url")
		if !ok {
			b.Fatal("not scanned")
		}
		_ = ScannedValues(ents, "ip", 0)
		_ = ScannedValues(ents, "host", 1, 2)
		_ = ScannedValues(ents, "account", 3)
	}
}
