// Package testkit holds test helpers shared by the unit tests of several
// packages and the end-to-end tests: a ResponseWriter that hands each
// flush to the test, Google service-account key files for mock token
// endpoints, and a request body shaped like Claude Code's. It is internal:
// nothing outside this module imports it, and no production code does.
package testkit
