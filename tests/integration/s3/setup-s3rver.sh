#!/bin/sh
# Install s3rver 3.7.1 (a local S3 server for tests) under a directory, once.
#
# usage: setup-s3rver.sh <dir>
# Prints the path of the s3rver executable. Installs nodejs and npm from apt
# only when npm is not on PATH (this repo's images may ship nodejs with npm
# bundled, and then `apt-get install npm` conflicts), then
# `npm install --prefix <dir> s3rver@3.7.1` unless <dir> already holds that
# version. Safe to run concurrently: a lock file serialises installs.
#
# Then it patches one bug of s3rver 3.7.1: its filesystem store answers a
# PUT before the object file is written out (putObject resolves on the
# hashing stream's "finish", not the file's), so a LIST right after a PUT
# can see the old or a zero size. S3 (and Strata's s3 plugin, see
# docs/tier2.md) assume read-after-write consistency, so the patch makes
# putObject wait for the file stream's "close".
set -eu

dir=${1:?usage: setup-s3rver.sh <install dir>}
version=3.7.1
bin="$dir/node_modules/.bin/s3rver"
stamp="$dir/.s3rver-$version-patched1"

mkdir -p "$dir"
exec 9>"$dir/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi

if [ -x "$bin" ] && [ -f "$stamp" ]; then
	echo "$bin"
	exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
	echo "setup-s3rver: npm not on PATH; installing nodejs and npm" \
		"from apt" >&2
	sudo=""
	if [ "$(id -u)" != 0 ]; then
		sudo=sudo
	fi
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y \
		--no-install-recommends nodejs npm >&2
fi

echo "setup-s3rver: npm install s3rver@$version into $dir" >&2
npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
	"s3rver@$version" >&2
if [ ! -x "$bin" ]; then
	echo "setup-s3rver: $bin missing after npm install" >&2
	exit 1
fi
node - "$dir/node_modules/s3rver/lib/stores/filesystem.js" <<'JS' >&2
const fs = require('fs');
const file = process.argv[2];
let src = fs.readFileSync(file, 'utf8');
const edits = [
  [`        writeStream.end(object.content);
        md5Context.update(object.content);
        resolve([object.content.length, md5Context.digest('hex')]);`,
   `        md5Context.update(object.content);
        const digest = md5Context.digest('hex');
        writeStream
          .on('error', reject)
          .on('close', () => resolve([object.content.length, digest]));
        writeStream.end(object.content);`],
  [`          .on('error', reject)
          .on('finish', () => resolve([totalLength, md5Context.digest('hex')]))
          .pipe(writeStream);`,
   `          .on('error', reject)
          .pipe(writeStream)
          .on('error', reject)
          .on('close', () => resolve([totalLength, md5Context.digest('hex')]));`],
];
for (const [from, to] of edits) {
  if (src.includes(to)) continue;
  if (!src.includes(from)) {
    console.error('setup-s3rver: cannot patch ' + file + ': code changed');
    process.exit(1);
  }
  src = src.replace(from, to);
}
fs.writeFileSync(file, src);
console.error('setup-s3rver: patched putObject to answer after the write');
JS
touch "$stamp"
echo "$bin"
