package main

import (
	"bytes"
	"encoding/base64"
	"io"
	"os"
	"sort"
	"strings"
)

// Mask is what a secret value becomes in a step's output: runner-go's replacer
// (drone/runner-go pipeline/runtime/replacer.go, used by drone-runner-docker) writes six asterisks.
const Mask = "******"

// MinMasked is the shortest text masked: runner-go skips empty and one-character parts ("avoid masking
// empty or single character strings").
const MinMasked = 2

// MaskPatterns are the texts masked for these secret values, longest first (a longer one wins where two
// start at the same place). As runner-go does it: each line of a value, trimmed of white space, if it has
// MinMasked bytes or more. Beyond runner-go, as podline's issue 18 asks: the value's base64 form (standard
// alphabet, without its padding, so it is found with or without "=").
func MaskPatterns(values []string) [][]byte {
	seen := map[string]bool{}
	var patterns [][]byte
	add := func(text string) {
		if len(text) >= MinMasked && !seen[text] {
			seen[text] = true
			patterns = append(patterns, []byte(text))
		}
	}
	for _, value := range values {
		for _, part := range strings.Split(value, "\n") {
			add(strings.TrimSpace(part))
		}
		if len(strings.TrimSpace(value)) >= MinMasked {
			add(strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(value)), "="))
		}
	}
	sort.SliceStable(patterns, func(i, j int) bool { return len(patterns[i]) > len(patterns[j]) })
	return patterns
}

// SecretValues are the values of the environment variables named (those unset or empty are left out).
func SecretValues(names []string, lookup func(string) (string, bool)) []string {
	var values []string
	for _, name := range names {
		if value, ok := lookup(name); ok && value != "" {
			values = append(values, value)
		}
	}
	return values
}

// Masker replaces the patterns in a stream of output. It holds back only the bytes at the end of what it
// was given that may be the start of a pattern, so output flows on as it comes (no line buffering), and a
// value written in two pieces is still masked.
type Masker struct {
	W        io.Writer
	patterns [][]byte
	first    [256]bool // the first bytes of the patterns
	held     []byte
}

// NewMasker masks patterns (see MaskPatterns) in what is written to w.
func NewMasker(w io.Writer, patterns [][]byte) *Masker {
	m := &Masker{W: w, patterns: patterns}
	for _, p := range patterns {
		m.first[p[0]] = true
	}
	return m
}

// Write masks what it can of held+p and writes it to W; it reports len(p) written unless W fails.
func (m *Masker) Write(p []byte) (int, error) {
	if len(m.patterns) == 0 {
		return m.passOn(p, len(p))
	}
	data := append(m.held, p...)
	out, rest := m.mask(data, false)
	m.held = append([]byte(nil), rest...)
	return m.passOn(out, len(p))
}

// Flush writes what is held back: the output has ended.
func (m *Masker) Flush() error {
	out, _ := m.mask(m.held, true)
	m.held = nil
	_, err := m.passOn(out, 0)
	return err
}

func (m *Masker) passOn(out []byte, n int) (int, error) {
	if len(out) == 0 {
		return n, nil
	}
	if _, err := m.W.Write(out); err != nil {
		return 0, err
	}
	return n, nil
}

// mask returns data masked, up to the first byte that may begin a pattern not yet complete (unless final),
// and the rest from there.
func (m *Masker) mask(data []byte, final bool) ([]byte, []byte) {
	var out []byte
	plain := 0 // start of the bytes not yet copied to out
	for i := 0; i < len(data); {
		if !m.first[data[i]] {
			i++
			continue
		}
		tail := data[i:]
		if !final && m.mayGrow(tail) {
			return append(out, data[plain:i]...), tail
		}
		if p := m.matchAt(tail); p != nil {
			out = append(append(out, data[plain:i]...), Mask...)
			i += len(p)
			plain = i
			continue
		}
		i++
	}
	return append(out, data[plain:]...), nil
}

// mayGrow: tail is shorter than some pattern and is its start, so more output may complete it.
func (m *Masker) mayGrow(tail []byte) bool {
	for _, p := range m.patterns {
		if len(tail) < len(p) && bytes.HasPrefix(p, tail) {
			return true
		}
	}
	return false
}

// matchAt is the longest pattern tail starts with, or nil.
func (m *Masker) matchAt(tail []byte) []byte {
	for _, p := range m.patterns {
		if bytes.HasPrefix(tail, p) {
			return p
		}
	}
	return nil
}

// maskerFor is the masker of a step's output: the values of its --mask variables, from the environment.
func maskerFor(w io.Writer, names []string) *Masker {
	return NewMasker(w, MaskPatterns(SecretValues(names, os.LookupEnv)))
}
