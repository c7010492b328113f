#!/usr/bin/env bash
# make chart-check: render charts/strata with every values file, lint the
# output, validate every manifest against the Kubernetes API schemas offline
# and check the rendered config files with the Strata binaries' own loader.
#
# usage: scripts/chart/check.sh [BUILD_DIR]
#   BUILD_DIR (default: build, or $STRATA_BUILD_DIR) caches the renderer
#   (BUILD_DIR/chart-check/helmtpl) and holds the rendered output; the
#   config check runs BUILD_DIR/bin/strata-controller and
#   strata-segmentstore with `--config FILE --check-config` when they exist.
# Tools (scripts/deps.txt [test]): golang-go + the Go -dev packages of the
# renderer, yamllint, python3-kubernetes. No network and no helm binary.
# Ends with "chart-check: N passed, M failed"; exit 1 on any failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/scripts/chart
chart=$root/charts/strata
build=$(realpath -m "${1:-${STRATA_BUILD_DIR:-$root/build}}")
work=$build/chart-check
# Debian's python3 (python3-kubernetes lives there), even when a pyenv or
# venv python3 comes first in PATH.
py=/usr/bin/python3
[ -x "$py" ] || py=python3

pass=0
fail=0
skipped=()
ok() {
	echo "ok   $*"
	pass=$((pass + 1))
}
bad() {
	echo "FAIL $*"
	fail=$((fail + 1))
}

missing=()
command -v go >/dev/null || missing+=(golang-go)
command -v yamllint >/dev/null || missing+=(yamllint)
"$py" -c 'import kubernetes, yaml' 2>/dev/null || missing+=(python3-kubernetes)
[ -d /usr/share/gocode/src/github.com/Masterminds/sprig ] ||
	missing+=(golang-github-masterminds-sprig-dev)
if [ ${#missing[@]} -gt 0 ]; then
	echo "chart-check: missing tools: ${missing[*]}; install them with" \
		"'scripts/install-deps.sh test' (or 'make deps')" >&2
	exit 1
fi

rm -rf "$work/rendered" "$work/config" "$work/neg"
mkdir -p "$work/rendered" "$work/config" "$work/neg"

# 1. The renderer: a `helm template` stand-in built offline from Debian's Go
# packages, rebuilt only when its sources change.
ht=$work/helmtpl
stamp=$(cat "$here/helmtpl/main.go" "$here/helmtpl/mkvendor.sh" | sha256sum | cut -c1-16)
if [ ! -x "$ht/helmtpl" ] || [ "$(cat "$ht/stamp" 2>/dev/null)" != "$stamp" ]; then
	echo "chart-check: building the renderer in $ht"
	rm -rf "$ht"
	mkdir -p "$ht"
	cp "$here/helmtpl/main.go" "$ht/"
	sh "$here/helmtpl/mkvendor.sh" "$ht"
	(cd "$ht" && GO111MODULE=on GOPROXY=off GOFLAGS=-mod=vendor GOENV=off \
		GOCACHE="$work/gocache" GOPATH="$work/gopath" \
		go build -o helmtpl .)
	echo "$stamp" >"$ht/stamp"
fi
helmtpl=$ht/helmtpl

# 2. Render with every values file: the defaults (under two release names),
# the size profiles and the ci/ cases.
renders=()
render() { # render NAME RELEASE [helmtpl args...]
	local name=$1 release=$2
	shift 2
	local out=$work/rendered/$name.yaml
	if "$helmtpl" -name "$release" -namespace strata "$@" "$chart" \
		>"$out" 2>"$work/rendered/$name.err" &&
		"$helmtpl" -notes -name "$release" -namespace strata "$@" \
			"$chart" >"$work/rendered/$name.notes" 2>>"$work/rendered/$name.err"; then
		ok "render $name"
		renders+=("$name")
	else
		bad "render $name: $(cat "$work/rendered/$name.err")"
	fi
}
render default strata
render default-release-name my-release
render values-small strata -f "$chart/values-small.yaml"
render values-large strata -f "$chart/values-large.yaml"
for f in "$chart"/ci/*.yaml; do
	render "ci-$(basename "$f" .yaml)" strata -f "$f"
done

# 3. Lint the rendered output and the chart's own YAML files.
lint_files=("$chart/Chart.yaml" "$chart"/values*.yaml "$chart"/ci/*.yaml)
for r in "${renders[@]}"; do lint_files+=("$work/rendered/$r.yaml"); done
if yamllint -f parsable -c "$here/yamllint.yml" "${lint_files[@]}" >"$work/yamllint.out" 2>&1; then
	ok "yamllint (${#lint_files[@]} files)"
else
	bad "yamllint:"
	sed 's/^/     /' "$work/yamllint.out"
fi

# 4. Kubernetes schemas (python3-kubernetes types: unknown fields, types,
# required fields, names and labels).
for r in "${renders[@]}"; do
	if "$py" "$here/validate.py" "$work/rendered/$r.yaml" >"$work/rendered/$r.validate" 2>&1; then
		ok "schema $r ($(tail -1 "$work/rendered/$r.validate"))"
	else
		bad "schema $r:"
		grep -v '^ok ' "$work/rendered/$r.validate" | sed 's/^/     /'
	fi
done
# kubectl parses and maps every document offline when it is installed.
if command -v kubectl >/dev/null; then
	for r in "${renders[@]}"; do
		if kubectl annotate --local -f "$work/rendered/$r.yaml" ci=1 -o name \
			>"$work/rendered/$r.kubectl" 2>&1; then
			ok "kubectl parse $r"
		else
			bad "kubectl parse $r: $(cat "$work/rendered/$r.kubectl")"
		fi
	done
else
	skipped+=("kubectl parse (kubectl not installed)")
fi

# 5. Wrong values must fail with a message that says what to set.
expect_fail() { # expect_fail NAME MESSAGE [helmtpl args...]
	local name=$1 msg=$2
	shift 2
	if "$helmtpl" -name strata "$@" "$chart" >/dev/null 2>"$work/neg/$name.err"; then
		bad "negative $name: rendered, expected an error containing '$msg'"
	elif grep -qF -- "$msg" "$work/neg/$name.err"; then
		ok "negative $name"
	else
		bad "negative $name: error does not contain '$msg': $(cat "$work/neg/$name.err")"
	fi
}
expect_fail s3-no-endpoint "tier2.s3.endpoint is required" -set tier2.type=s3
expect_fail s3-no-bucket "tier2.s3.bucket is required" -set tier2.type=s3 \
	-set tier2.s3.endpoint=http://s3:4569
expect_fail s3-no-credentials "tier2.s3.accessKey is required" \
	-set tier2.type=s3 -set tier2.s3.endpoint=http://s3:4569 -set tier2.s3.bucket=b
expect_fail hdfs-no-url "tier2.hdfs.url is required" -set tier2.type=hdfs
expect_fail bad-tier2-type 'tier2.type "nfs" is not supported' -set tier2.type=nfs
expect_fail bad-anti-affinity 'antiAffinity "maybe" is not supported' \
	-set controller.antiAffinity=maybe
expect_fail even-controllers 'controller.replicas 2: use an odd number' \
	-set controller.replicas=2

# 6. The rendered config files: valid YAML, and accepted by the binary that
# reads them (`--config FILE --check-config`) when it is built.
for r in "${renders[@]}"; do
	if ! "$py" - "$work/rendered/$r.yaml" "$work/config/$r" <<'EOF'; then
import os, sys, yaml
src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
found = 0
for doc in yaml.safe_load_all(open(src, encoding="utf-8")):
    if doc and doc.get("kind") == "ConfigMap" and doc["metadata"]["name"].endswith("-config"):
        for key, text in (doc.get("data") or {}).items():
            if not key.endswith(".yaml"):
                continue
            if not isinstance(yaml.safe_load(text), dict):
                sys.exit(f"{key}: not a YAML mapping")
            with open(os.path.join(out, key), "w", encoding="utf-8") as f:
                f.write(text)
            found += 1
if found != 2:
    sys.exit(f"expected controller.yaml and segmentstore.yaml, found {found} config files")
EOF
		bad "config files of $r"
		continue
	fi
	for cfg in "$work/config/$r"/*.yaml; do
		case $(basename "$cfg") in
		controller.yaml) bin=strata-controller ;;
		segmentstore.yaml) bin=strata-segmentstore ;;
		*) continue ;;
		esac
		if [ ! -x "$build/bin/$bin" ]; then
			skipped+=("$r/$(basename "$cfg") ($bin not built in $build/bin)")
			continue
		fi
		if ! "$build/bin/$bin" --help 2>&1 | grep -q -- '--check-config'; then
			skipped+=("$r/$(basename "$cfg") ($bin has no --check-config option yet)")
			continue
		fi
		# The per-pod keys and secrets the StatefulSets set in the
		# environment (the S3 credentials only for tier2.type s3, as
		# templates/segmentstore.yaml does).
		secrets=()
		if grep -q '^  plugin: s3$' "$cfg"; then
			secrets=(STRATA_TIER2_OPTIONS_ACCESS_KEY_ID=chart-check
				STRATA_TIER2_OPTIONS_SECRET_ACCESS_KEY=chart-check)
		fi
		if env STRATA_NODE_ID=1 STRATA_PLUGIN_DIR="$build/plugins" \
			"${secrets[@]}" \
			"$build/bin/$bin" --config "$cfg" --check-config \
			>"$cfg.check" 2>&1; then
			ok "$bin --check-config $r/$(basename "$cfg")"
		else
			bad "$bin --check-config $r/$(basename "$cfg"): $(cat "$cfg.check")"
		fi
	done
done

for s in "${skipped[@]+"${skipped[@]}"}"; do echo "skip $s"; done
echo "chart-check: $pass passed, $fail failed, ${#skipped[@]} skipped (output in $work)"
[ "$fail" -eq 0 ]
