package main

import "github.com/binarc/binarc/replication"

// sourceTLSFlags say how the connection to the source server is secured.
type sourceTLSFlags struct {
	SourceTLS     string `name:"source-tls" env:"BINARC_SOURCE_TLS" default:"preferred" enum:"disable,preferred,required,verify-ca,verify-full" help:"TLS to the source: disable, preferred (TLS if the server offers it), required (refuse a server without TLS), verify-ca (and check the certificate's CA), verify-full (and its host name)."`
	SourceTLSCA   string `name:"source-tls-ca" env:"BINARC_SOURCE_TLS_CA" type:"path" placeholder:"FILE" help:"PEM file of the CA that signed the source's certificate (verify-ca, verify-full; default: the system's roots)."`
	SourceTLSCert string `name:"source-tls-cert" env:"BINARC_SOURCE_TLS_CERT" type:"path" placeholder:"FILE" help:"Client certificate (PEM), for a user that REQUIRE X509."`
	SourceTLSKey  string `name:"source-tls-key" env:"BINARC_SOURCE_TLS_KEY" type:"path" placeholder:"FILE" help:"Its private key (PEM)."`
}

// options are the flags as given; replication.Sources checks them.
func (f sourceTLSFlags) options() replication.TLSOptions {
	return replication.TLSOptions{Mode: replication.TLSMode(f.SourceTLS), CA: f.SourceTLSCA, Cert: f.SourceTLSCert, Key: f.SourceTLSKey, Flag: "--source-tls"}
}

// targetTLSFlags are the same for restore's --target server.
type targetTLSFlags struct {
	TargetTLS     string `name:"target-tls" env:"BINARC_TARGET_TLS" default:"preferred" enum:"disable,preferred,required,verify-ca,verify-full" help:"TLS to the --target server (as --source-tls; the mariadb client checks the host name only with verify-full)."`
	TargetTLSCA   string `name:"target-tls-ca" env:"BINARC_TARGET_TLS_CA" type:"path" placeholder:"FILE" help:"PEM file of the CA that signed the target's certificate."`
	TargetTLSCert string `name:"target-tls-cert" env:"BINARC_TARGET_TLS_CERT" type:"path" placeholder:"FILE" help:"Client certificate (PEM) for the target."`
	TargetTLSKey  string `name:"target-tls-key" env:"BINARC_TARGET_TLS_KEY" type:"path" placeholder:"FILE" help:"Its private key (PEM)."`
}

func (f targetTLSFlags) options() (replication.TLSOptions, error) {
	return tlsOptions(replication.TLSOptions{Mode: replication.TLSMode(f.TargetTLS), CA: f.TargetTLSCA, Cert: f.TargetTLSCert, Key: f.TargetTLSKey, Flag: "--target-tls"})
}

// tlsOptions checks o; a bad combination is a usage error.
func tlsOptions(o replication.TLSOptions) (replication.TLSOptions, error) {
	if err := o.Validate(); err != nil {
		return o, usageError{err}
	}
	return o, nil
}
