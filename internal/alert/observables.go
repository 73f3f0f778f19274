package alert

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Observables is what an alert's entities say about origin and target, for the formats whose
// schemas have fixed fields for them (LEEF, LogRhythm). Each field holds the first value found.
type Observables struct {
	SourceIP, DestinationIP     string
	SourcePort, DestinationPort string
	Protocol                    string
	// Host is the first host entity's HostName: the machine under attack.
	Host string
	// Login is the first account as NTDomain\Name, Name@UPNSuffix or Name; Account is the next
	// account with a different name.
	Login, Account string
	// CommandLine, Process (image file name), ProcessID and ParentProcess describe the first
	// process entity with a command line (else the first process).
	CommandLine, Process, ProcessID, ParentProcess string
	// File and FileHash describe the first file entity.
	File, FileHash string
	URL            string
	Malware        string
}

// Observables summarises the alert's entities. Defender's ip entities name the remote party
// (the attacker) and its host entities the machine under attack, so IPs read as the source and
// hosts as the target, unless a network-connection entity says which is which.
func (a *Alert) Observables() Observables {
	var o Observables
	if a == nil {
		return o
	}
	for _, e := range a.Entities {
		if e.Type != "network-connection" {
			continue
		}
		first(&o.SourceIP, obsText(obsGet(obsMap(obsGet(e.Fields, "SourceAddress")), "Address")))
		first(&o.DestinationIP, obsText(obsGet(obsMap(obsGet(e.Fields, "DestinationAddress")), "Address")))
		first(&o.SourcePort, obsText(obsGet(e.Fields, "SourcePort")))
		first(&o.DestinationPort, obsText(obsGet(e.Fields, "DestinationPort")))
		first(&o.Protocol, obsText(obsGet(e.Fields, "Protocol")))
	}
	var proc map[string]any
	var loginName string
	for _, e := range a.Entities {
		m := e.Fields
		switch e.Type {
		case "ip":
			first(&o.SourceIP, obsText(obsGet(m, "Address")))
		case "host":
			first(&o.Host, obsText(obsGet(m, "HostName")))
		case "account":
			// The same user often appears twice, once with its domain: compare bare names.
			name, bare := accountName(m), obsText(obsGet(m, "Name"))
			if o.Login == "" {
				o.Login, loginName = name, bare
			} else if !strings.EqualFold(bare, loginName) {
				first(&o.Account, name)
			}
		case "process":
			if proc == nil {
				proc = m
			}
			if o.CommandLine == "" && obsText(obsGet(m, "CommandLine")) != "" {
				proc = m
				o.CommandLine = obsText(obsGet(m, "CommandLine"))
			}
		case "file":
			if o.File == "" {
				o.File = obsText(obsGet(m, "Name"))
				o.FileHash = fileHash(m)
			}
		case "url":
			first(&o.URL, obsText(obsGet(m, "Url")))
		case "malware":
			first(&o.Malware, obsText(obsGet(m, "Name")))
		}
	}
	if proc != nil {
		o.Process = obsText(obsGet(obsMap(obsGet(proc, "ImageFile")), "Name"))
		o.ProcessID = obsText(obsGet(proc, "ProcessId"))
		o.ParentProcess = obsText(obsGet(obsMap(obsGet(obsMap(obsGet(proc, "ParentProcess")), "ImageFile")), "Name"))
	}
	return o
}

func first(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

func accountName(m map[string]any) string {
	name := obsText(obsGet(m, "Name"))
	if name == "" {
		return ""
	}
	if d := obsText(obsGet(m, "NTDomain")); d != "" {
		return d + `\` + name
	}
	if u := obsText(obsGet(m, "UPNSuffix")); u != "" {
		return name + "@" + u
	}
	return name
}

func fileHash(m map[string]any) string {
	hs, _ := obsGet(m, "FileHashes").([]any)
	for _, h := range hs {
		if v := obsText(obsGet(obsMap(h), "Value")); v != "" {
			return v
		}
	}
	return ""
}

// obsGet looks a member up in any letter case: the two alert shapes differ in case.
func obsGet(m map[string]any, key string) any {
	v, _ := fieldValue(m, key)
	return v
}

func obsMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// obsText renders a scalar entity value as text: numbers keep their JSON text.
func obsText(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return string(t)
	case bool:
		return strconv.FormatBool(t)
	case float64: // Fields built by hand rather than parsed
		return strconv.FormatFloat(t, 'f', -1, 64)
	case int:
		return strconv.Itoa(t)
	}
	return ""
}
