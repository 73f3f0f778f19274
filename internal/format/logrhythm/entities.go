package logrhythm

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/defender-siem/forwarder/internal/alert"
)

// entities is what an alert's entities say about origin and target, first entity first.
type entities struct {
	srcIP, dstIP, srcPort, dstPort, proto string
	host                                  string
	login, account                        string
	loginName                             string
	command, process, processID           string
	parentProcess                         string
	file, hash                            string
	url                                   string
	malware                               string
}

// summarize picks the schema-worthy values from the entities. Defender's IP entities name the
// remote party (the attacker) and its host entities the machine under attack, so IPs read as
// origin and hosts as impacted, unless a network-connection entity says which is which.
func summarize(es []alert.Entity) entities {
	var s entities
	for _, e := range es {
		if e.Type != "network-connection" {
			continue
		}
		set(&s.srcIP, str(get(asMap(get(e.Fields, "SourceAddress")), "Address")))
		set(&s.dstIP, str(get(asMap(get(e.Fields, "DestinationAddress")), "Address")))
		set(&s.srcPort, str(get(e.Fields, "SourcePort")))
		set(&s.dstPort, str(get(e.Fields, "DestinationPort")))
		set(&s.proto, str(get(e.Fields, "Protocol")))
	}
	var firstProc map[string]any
	for _, e := range es {
		m := e.Fields
		switch e.Type {
		case "ip":
			set(&s.srcIP, str(get(m, "Address")))
		case "host":
			set(&s.host, str(get(m, "HostName")))
		case "account":
			// The same user often appears twice, once with its domain; compare bare names.
			name, bare := accountName(m), str(get(m, "Name"))
			if s.login == "" {
				s.login, s.loginName = name, bare
			} else if !strings.EqualFold(bare, s.loginName) {
				set(&s.account, name)
			}
		case "process":
			if firstProc == nil {
				firstProc = m
			}
			// The first process with a command line says most about what ran.
			if s.command == "" && str(get(m, "CommandLine")) != "" {
				firstProc = m
				s.command = str(get(m, "CommandLine"))
			}
		case "file":
			if s.file == "" {
				s.file = str(get(m, "Name"))
				s.hash = fileHash(m)
			}
		case "url":
			set(&s.url, str(get(m, "Url")))
		case "malware":
			set(&s.malware, str(get(m, "Name")))
		}
	}
	if firstProc != nil {
		s.process = str(get(asMap(get(firstProc, "ImageFile")), "Name"))
		s.processID = str(get(firstProc, "ProcessId"))
		s.parentProcess = str(get(asMap(get(asMap(get(firstProc, "ParentProcess")), "ImageFile")), "Name"))
	}
	return s
}

func set(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

func accountName(m map[string]any) string {
	name := str(get(m, "Name"))
	if name == "" {
		return ""
	}
	if d := str(get(m, "NTDomain")); d != "" {
		return d + `\` + name
	}
	if u := str(get(m, "UPNSuffix")); u != "" {
		return name + "@" + u
	}
	return name
}

func fileHash(m map[string]any) string {
	hs, _ := get(m, "FileHashes").([]any)
	for _, h := range hs {
		if v := str(get(asMap(h), "Value")); v != "" {
			return v
		}
	}
	return ""
}

// get looks key up as written, then case-insensitively: the two alert shapes differ in case.
func get(m map[string]any, key string) any {
	if m == nil {
		return nil
	}
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func str(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return t.String()
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case int:
		return strconv.Itoa(t)
	case int64:
		return strconv.FormatInt(t, 10)
	case bool:
		return strconv.FormatBool(t)
	}
	return ""
}
