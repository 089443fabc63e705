//go:build !race

package kvs_test

const raceEnabled = false
