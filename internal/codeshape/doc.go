// Package codeshape holds no code: its tests measure the repository's shape
// (function length, the size of each public package's documentation) so
// that the limits in docs/architecture.md are checked, not just stated.
package codeshape
