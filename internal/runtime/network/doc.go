// Package network sets up pod networks.
package network
