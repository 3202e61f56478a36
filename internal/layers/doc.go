// Package layers holds the test that keeps binarc's packages in their
// layers: each package imports only what the table in
// docs/ARCHITECTURE.md allows it, and the read-only packages (restore,
// serve, verify) never write to a store. It has no code of its own.
package layers
