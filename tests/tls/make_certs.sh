#!/usr/bin/env bash
# Generates the throw-away PKI the TLS tests use, with the openssl CLI, into directory $1:
#   ca.{key,pem}            test CA
#   a.{key,pem}             a.test, localhost, 127.0.0.1, ::1 (the default certificate)
#   a2.{key,pem}            same names, new key: the "rotated" certificate for SIGHUP tests
#   b.{key,pem}             *.b.test (wildcard)
#   cn.{key,pem}            CN=cn.test and no SAN (legacy CN fallback)
#   client.{key,pem}        client certificate from the test CA (mTLS accepted)
#   other-ca.{key,pem}, rogue.{key,pem}   a second CA and a client certificate from it (mTLS refused)
# EC P-256 keys: generation is instant and ECDHE-ECDSA is what a modern deployment serves.
set -euo pipefail
out=${1:?usage: make_certs.sh <dir>}
mkdir -p "$out"
cd "$out"

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

ca() {  # name subject
    newkey "$1"
    openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 30 -subj "$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

leaf() {  # name subject ca extensions
    newkey "$1"
    openssl req -new -key "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
    printf '%b\n' "$4" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -set_serial "0x$(openssl rand -hex 8)" \
        -out "$1.pem" -days 30 -extfile "$1.ext" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

server_ext='basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth'
client_ext='basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth'

ca ca "/CN=edgeguard test CA"
ca other-ca "/CN=edgeguard other CA"
leaf a "/CN=a.test" ca "$server_ext\nsubjectAltName=DNS:a.test,DNS:localhost,IP:127.0.0.1,IP:::1"
leaf a2 "/CN=a.test" ca "$server_ext\nsubjectAltName=DNS:a.test,DNS:localhost,IP:127.0.0.1,IP:::1"
leaf b "/CN=b.test" ca "$server_ext\nsubjectAltName=DNS:*.b.test"
leaf cn "/CN=cn.test" ca "$server_ext"
leaf client "/CN=edgeguard test client" ca "$client_ext"
leaf rogue "/CN=rogue client" other-ca "$client_ext"
