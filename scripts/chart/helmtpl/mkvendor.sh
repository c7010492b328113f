#!/bin/sh
# Writes go.mod and vendor/ for helmtpl from Debian's golang-*-dev sources
# (/usr/share/gocode/src), so `go build -mod=vendor` needs no network.
# usage: mkvendor.sh DIR   (DIR holds main.go; vendor/ and go.mod go there)
set -eu
DIR=${1:?directory holding main.go}
SRC=/usr/share/gocode/src
# module-path  version  source-dir-under-SRC  packages...
MODS='
github.com/Masterminds/goutils v1.1.1 github.com/Masterminds/goutils github.com/Masterminds/goutils
github.com/Masterminds/semver/v3 v3.2.0 github.com/Masterminds/semver github.com/Masterminds/semver/v3
github.com/Masterminds/sprig/v3 v3.2.3 github.com/Masterminds/sprig github.com/Masterminds/sprig/v3
github.com/google/uuid v1.3.0 github.com/google/uuid github.com/google/uuid
github.com/huandu/xstrings v1.3.3 github.com/huandu/xstrings github.com/huandu/xstrings
github.com/imdario/mergo v0.3.13 github.com/imdario/mergo github.com/imdario/mergo
github.com/mitchellh/copystructure v1.2.0 github.com/mitchellh/copystructure github.com/mitchellh/copystructure
github.com/mitchellh/reflectwalk v1.0.2 github.com/mitchellh/reflectwalk github.com/mitchellh/reflectwalk
github.com/shopspring/decimal v1.3.1 github.com/shopspring/decimal github.com/shopspring/decimal
github.com/spf13/cast v1.5.0 github.com/spf13/cast github.com/spf13/cast
golang.org/x/crypto v0.4.0 golang.org/x/crypto golang.org/x/crypto/bcrypt golang.org/x/crypto/blowfish golang.org/x/crypto/pbkdf2 golang.org/x/crypto/scrypt
gopkg.in/yaml.v2 v2.4.0 gopkg.in/yaml.v2 gopkg.in/yaml.v2
sigs.k8s.io/yaml v1.3.0 sigs.k8s.io/yaml sigs.k8s.io/yaml
'
cd "$DIR"
rm -rf vendor
mkdir vendor
: >vendor/modules.txt
echo "$MODS" | while read -r mod ver dir pkgs; do
	[ -n "$mod" ] || continue
	if [ ! -d "$SRC/$dir" ]; then
		echo "mkvendor: $SRC/$dir is missing; install the Go packages with scripts/install-deps.sh test" >&2
		exit 1
	fi
	mkdir -p "vendor/$(dirname "$mod")"
	cp -r "$SRC/$dir" "vendor/$mod"
	printf '# %s %s\n## explicit\n' "$mod" "$ver" >>vendor/modules.txt
	for p in $pkgs; do echo "$p" >>vendor/modules.txt; done
done
# go.mod: every vendored module must be required
{
	echo 'module helmtpl'
	echo
	echo 'go 1.19'
	echo
	echo 'require ('
	echo "$MODS" | while read -r mod ver rest; do
		if [ -n "$mod" ]; then printf '\t%s %s\n' "$mod" "$ver"; fi
	done
	echo ')'
} >go.mod
