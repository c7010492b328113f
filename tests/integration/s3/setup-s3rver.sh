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
# Then it patches two bugs of s3rver 3.7.1's filesystem store:
# - it answers a PUT before the object file is written out (putObject
#   resolves on the hashing stream's "finish", not the file's), so a LIST
#   right after a PUT can see the old or a zero size. S3 (and Strata's s3
#   plugin, see docs/tier2.md) assume read-after-write consistency, so the
#   patch makes putObject wait for the file stream's "close";
# - a PUT is not atomic: it writes "<key>._S3rver_object" in place, then
#   its .md5 and metadata JSON, so a SIGKILL mid-PUT (the tier-2 outage
#   tests do that) could leave a partial object, or a truncated metadata
#   file after which every LIST of the prefix fails with HTTP 500
#   ("Unexpected end of JSON input"), states no S3 can be in. The patch
#   writes each file to "<name>.tmp-<random>" and renames it into place;
#   listings only see names ending in "._S3rver_object". (A kill between
#   the renames can still pair a new object with its old .md5: a stale
#   ETag in listings, which Strata does not use.)
set -eu

dir=${1:?usage: setup-s3rver.sh <install dir>}
version=3.7.1
bin="$dir/node_modules/.bin/s3rver"
stamp="$dir/.s3rver-$version-patched2"

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
  [`      const writeStream = fs.createWriteStream(objectPath);`,
   `      const writeStream = fs.createWriteStream(tmpPath);`],
  [`    const [size, md5] = await new Promise((resolve, reject) => {`,
   `    const tmpPath = objectPath + '.tmp-' + crypto.randomBytes(8).toString('hex');
    const [size, md5] = await new Promise((resolve, reject) => {`],
  [`    await this.putMetadata(object.bucket, object.key, object.metadata, md5);
    return { size, md5 };`,
   `    await fs.rename(tmpPath, objectPath);
    await this.putMetadata(object.bucket, object.key, object.metadata, md5);
    return { size, md5 };`],
  [`    if (md5) await fs.writeFile(md5Path, md5);
    await fs.writeFile(metadataPath, JSON.stringify(json, null, 2));`,
   `    const put = async (file, data) => {
      const tmp = file + '.tmp-' + crypto.randomBytes(8).toString('hex');
      await fs.writeFile(tmp, data);
      await fs.rename(tmp, file);
    };
    if (md5) await put(md5Path, md5);
    await put(metadataPath, JSON.stringify(json, null, 2));`],
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
console.error('setup-s3rver: patched putObject to answer after the write, atomically');
JS
touch "$stamp"
echo "$bin"
