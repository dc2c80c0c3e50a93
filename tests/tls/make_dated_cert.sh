#!/usr/bin/env bash
# A self-signed server certificate for localhost with a chosen validity window, for the expiry tests (an
# expired certificate, one that expires within days). `openssl req -x509` only takes a positive -days from now;
# `openssl ca` takes both ends.
#   make_dated_cert.sh <dir> <name> <notBefore YYYYMMDDHHMMSSZ> <notAfter YYYYMMDDHHMMSSZ>
# writes <dir>/<name>.pem and <dir>/<name>.key (EC P-256).
set -euo pipefail
dir=${1:?usage: make_dated_cert.sh <dir> <name> <notBefore> <notAfter>}
name=${2:?name}
not_before=${3:?notBefore}
not_after=${4:?notAfter}
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/ca.cnf" <<CNF
[ ca ]
default_ca = dated
[ dated ]
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
default_md = sha256
policy = any
copy_extensions = copy
[ any ]
commonName = supplied
CNF
: > "$work/index.txt"
echo 01 > "$work/serial"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key" 2>/dev/null
openssl req -new -key "$dir/$name.key" -out "$work/req.csr" -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
openssl ca -batch -config "$work/ca.cnf" -selfsign -keyfile "$dir/$name.key" -in "$work/req.csr" \
    -out "$dir/$name.pem" -startdate "$not_before" -enddate "$not_after" -notext 2>/dev/null
