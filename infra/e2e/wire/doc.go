// Package wire holds the end-to-end tests that prove replica-tls on the wire: the real replica-created
// bootstrap under the Lambda Runtime Interface Emulator, moto_server, the cluster simulator and one real
// redis-server per database (infra/dataplane), replicating in plain text, then over mutually
// authenticated TLS. It has no code of its own.
package wire
