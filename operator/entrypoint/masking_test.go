package main

import (
	"bytes"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
)

// The rules are runner-go's (drone/runner-go pipeline/runtime/replacer.go: each line of a masked secret,
// trimmed, if 2 bytes or more, becomes "******"), plus the value's base64 form (podline's issue 18).

func TestMaskPatterns(t *testing.T) {
	cases := []struct {
		values []string
		want   []string
	}{
		{nil, nil},
		{[]string{""}, nil},
		{[]string{"x"}, nil}, // one character: not masked (nor is its base64, 2 characters with = dropped)
		{[]string{"ab"}, []string{"YWI", "ab"}},
		{[]string{"  hunter2\n"}, []string{"ICBodW50ZXIyCg", "hunter2"}},
		{[]string{"line-one\n x \n\tline-two  "}, []string{"bGluZS1vbmUKIHggCglsaW5lLXR3byAg", "line-one", "line-two"}},
		{[]string{"same", "same"}, []string{"c2FtZQ", "same"}},
		{[]string{"\n \n"}, nil}, // only white space
	}
	for _, c := range cases {
		var got []string
		for _, p := range MaskPatterns(c.values) {
			got = append(got, string(p))
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("MaskPatterns(%q) = %q, want %q", c.values, got, c.want)
		}
	}
}

func masked(values []string, chunks ...string) string {
	var out bytes.Buffer
	m := NewMasker(&out, MaskPatterns(values))
	for _, chunk := range chunks {
		if n, err := m.Write([]byte(chunk)); err != nil || n != len(chunk) {
			panic("write")
		}
	}
	if err := m.Flush(); err != nil {
		panic(err)
	}
	return out.String()
}

func TestMaskerMasks(t *testing.T) {
	secret := "s3cr3t-Value!" // 13 bytes: its base64 ends with ==
	b64 := base64.StdEncoding.EncodeToString([]byte(secret))
	cases := []struct {
		values []string
		in     string
		want   string
	}{
		{nil, "nothing to mask\n", "nothing to mask\n"},
		{[]string{secret}, "token=" + secret + "\n", "token=******\n"},
		{[]string{secret}, secret + secret + " " + secret, "************ ******"},
		{[]string{secret}, "s3cr3t-Value\n", "s3cr3t-Value\n"},
		{[]string{secret}, "b64: " + b64 + "\n", "b64: ******==\n"}, // the padding is not secret
		{[]string{"multi\nline value"}, "multi and line value\n", "****** and ******\n"},
		{[]string{"ab", "abcd"}, "abcdab", "************"}, // the longest at each place: abcd then ab
		{[]string{"ab", "abcd"}, "abc", "******c"},
		{[]string{"x"}, "x marks\n", "x marks\n"}, // too short to mask
		{[]string{"é-ü"}, "naïve é-ü\n", "naïve ******\n"},
	}
	for _, c := range cases {
		if got := masked(c.values, c.in); got != c.want {
			t.Errorf("mask %q in %q = %q, want %q", c.values, c.in, got, c.want)
		}
	}
}

// Whichever way the output is cut into writes, the masked result is the same.
func TestMaskerStreamsAcrossWrites(t *testing.T) {
	values := []string{"s3cr3t-Value", "ab", "line one\nline two"}
	in := "pre s3cr3t-Value ab line one, line two s3cr3t-Valu s3cr3t-Value" +
		base64.StdEncoding.EncodeToString([]byte("s3cr3t-Value")) + " a"
	want := masked(values, in)
	if strings.Contains(want, "s3cr3t-Value") || strings.Contains(want, "line two") {
		t.Fatalf("not masked: %q", want)
	}
	for cut := 0; cut <= len(in); cut++ {
		if got := masked(values, in[:cut], in[cut:]); got != want {
			t.Errorf("cut at %d: %q, want %q", cut, got, want)
		}
	}
	chunks := strings.Split(in, "")
	if got := masked(values, chunks...); got != want {
		t.Errorf("a byte a write: %q, want %q", got, want)
	}
}

// Only a possible start of a secret is held back; the rest goes out at once.
func TestMaskerHoldsOnlyAPossibleStart(t *testing.T) {
	var out bytes.Buffer
	m := NewMasker(&out, MaskPatterns([]string{"hunter2"}))
	_, _ = m.Write([]byte("progress 50%"))
	if out.String() != "progress 50%" {
		t.Errorf("written at once: %q", out.String())
	}
	_, _ = m.Write([]byte(" hun"))
	if out.String() != "progress 50% " {
		t.Errorf("held back: %q", out.String())
	}
	_, _ = m.Write([]byte("gry"))
	if out.String() != "progress 50% hungry" {
		t.Errorf("released: %q", out.String())
	}
	_, _ = m.Write([]byte(" hunt"))
	_ = m.Flush()
	if out.String() != "progress 50% hungry hunt" {
		t.Errorf("flushed: %q", out.String())
	}
}

func TestSecretValues(t *testing.T) {
	env := map[string]string{"A": "one", "EMPTY": ""}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	got := SecretValues([]string{"A", "EMPTY", "UNSET"}, lookup)
	if !reflect.DeepEqual(got, []string{"one"}) {
		t.Errorf("%q", got)
	}
}
