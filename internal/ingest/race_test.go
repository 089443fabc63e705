//go:build race

package ingest_test

// raceEnabled says the race detector slows pion down enough that frames
// are lost on loopback, so the recording's counts cannot be compared.
const raceEnabled = true
