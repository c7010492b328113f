#!/usr/bin/env python3
"""A small WebHDFS server for Strata's tests (Python 3 standard library only).

This is NOT Hadoop. No HDFS can be installed on the build machines, so the
hdfs tier-2 plugin is tested against this server, which follows the Hadoop
"WebHDFS REST API" document (hadoop-hdfs/src/site/markdown/WebHDFS.md) for
the operations the plugin uses, including the parts a client can get wrong:

  * Two roles on two ports: a "namenode" that answers metadata operations
    and redirects data operations with "307 TEMPORARY_REDIRECT" and a
    Location header, and a "datanode" that takes or serves the bytes
    (spec sections "Create and Write to a File", "Append to a File",
    "Open and Read a File"). The datanode refuses requests that did not come
    through a namenode redirect (no "namenoderpcaddress" parameter), as a
    real datanode does.
  * Errors are RemoteException JSON objects with "exception",
    "javaClassName" and "message", with the status codes of the spec's
    "Error Responses" / "HTTP Response Codes" table: IllegalArgumentException
    and UnsupportedOperationException 400, SecurityException 401,
    IOException (and subclasses such as AccessControlException,
    FileAlreadyExistsException, RecoveryInProgressException) 403,
    FileNotFoundException 404, RuntimeException 500.
  * FileStatus / FileStatuses / boolean JSON objects as in "JSON Schemas".
  * HDFS semantics the REST document inherits from FileSystem: CREATE makes
    missing parents and fails with FileAlreadyExistsException unless
    overwrite=true; DELETE of a missing path is {"boolean": false}, not an
    error; CONCAT needs sources in the target's directory, non-empty, not
    the target, not repeated, not under construction (FSDirConcatOp);
    TRUNCATE to a length that is not a multiple of the block size returns
    {"boolean": false} and leaves the file under "lease recovery" for a
    while, during which APPEND/TRUNCATE fail with RecoveryInProgressException
    (403) and CONCAT into it fails with "target file is under construction";
    OPEN at an offset >= the length of a non-empty file is refused by the
    namenode with an IOException (403), as NamenodeWebHdfsMethods does.

Operations: GET OPEN, GETFILESTATUS, LISTSTATUS, GETHOMEDIRECTORY; PUT
CREATE, MKDIRS; POST APPEND, CONCAT, TRUNCATE; DELETE DELETE. Query
parameters (spec "HTTP Query Parameter Dictionary"): op, user.name,
overwrite, offset, length, sources, newlength, recursive, buffersize,
blocksize, replication, permission, noredirect. Security is "off"
(section "Authentication"): the user is user.name, else the default web
user dr.who. --deny-user NAME makes every request by NAME fail with
AccessControlException, to test permission errors.

Files live as plain files under --root. All namespace changes happen under
one lock, so each operation is atomic, as on a namenode. Writes are not
fsynced unless --fsync is given (real HDFS acknowledges a write once every
datanode of the pipeline has the bytes, hflush semantics, and syncs to disk
on close only with dfs.datanode.synconclose=true).

Test-only endpoints (NOT WebHDFS; on the namenode port, outside /webhdfs):
  POST /_test/fail?role=namenode|datanode&op=OP&count=N&mode=M
        [&status=S&exception=E&java=J&message=T]
      The next N requests for OP to that role fail. mode=respond (default):
      answer S (default 503) with RemoteException E (default
      RetriableException); mode=drop: read the request, close the
      connection without an answer, change nothing; mode=applied_drop: do
      the operation, then close without an answer (a lost reply); mode=hang:
      read the request and never answer (until the server stops).
  POST /_test/reset     clear failure rules and counters
  GET  /_test/stats     counters as JSON: requests per role and op, bytes
                        received in bodies per role

Usage:
  webhdfs_server.py --root DIR [--port P] [--datanode-port P]
                    [--port-file F] [--block-size N] [--recovery-ms MS]
                    [--deny-user U] [--fsync]
      serve in the foreground; ports 0 = any free port; --port-file gets
      "<namenode port> <datanode port>" once both listen.
  webhdfs_server.py --start --pid-file F --port P [other options]
      ctest fixture setup: start a server in the background with a fresh
      temporary root (unless --root), wait until it listens, exit 0.
  webhdfs_server.py --stop --pid-file F
      ctest fixture cleanup: SIGTERM the server named by F (then SIGKILL),
      which removes its temporary root.
"""

import argparse
import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

DEFAULT_WEB_USER = "dr.who"  # hadoop.http.staticuser.user default

# Exception short name -> (java class, HTTP status) per "HTTP Response Codes".
EXCEPTIONS = {
    "IllegalArgumentException": ("java.lang.IllegalArgumentException", 400),
    "HadoopIllegalArgumentException":
        ("org.apache.hadoop.HadoopIllegalArgumentException", 400),
    "InvalidPathException":
        ("org.apache.hadoop.fs.InvalidPathException", 400),
    "UnsupportedOperationException":
        ("java.lang.UnsupportedOperationException", 400),
    "SecurityException": ("java.lang.SecurityException", 401),
    "IOException": ("java.io.IOException", 403),
    "EOFException": ("java.io.EOFException", 403),
    "AccessControlException":
        ("org.apache.hadoop.security.AccessControlException", 403),
    "FileAlreadyExistsException":
        ("org.apache.hadoop.fs.FileAlreadyExistsException", 403),
    "ParentNotDirectoryException":
        ("org.apache.hadoop.fs.ParentNotDirectoryException", 403),
    "PathIsNotEmptyDirectoryException":
        ("org.apache.hadoop.fs.PathIsNotEmptyDirectoryException", 403),
    "RecoveryInProgressException":
        ("org.apache.hadoop.hdfs.protocol.RecoveryInProgressException", 403),
    "DSQuotaExceededException":
        ("org.apache.hadoop.hdfs.protocol.DSQuotaExceededException", 403),
    "StandbyException":
        ("org.apache.hadoop.ipc.StandbyException", 403),
    "RetriableException":
        ("org.apache.hadoop.ipc.RetriableException", 403),
    "FileNotFoundException": ("java.io.FileNotFoundException", 404),
    "RuntimeException": ("java.lang.RuntimeException", 500),
}


class WebHdfsError(Exception):
    """An exception the server reports as a RemoteException JSON object."""

    def __init__(self, exception, message, status=None, java=None):
        super().__init__(message)
        known = EXCEPTIONS.get(exception, ("java.io.IOException", 403))
        self.exception = exception
        self.java = java or known[0]
        self.status = status or known[1]
        self.message = message


class DropConnection(Exception):
    """Close the connection without answering (fault injection)."""


class State:
    """The namespace and data, shared by both roles."""

    def __init__(self, args):
        self.root = os.path.realpath(args.root)
        self.block_size = args.block_size
        self.recovery_s = args.recovery_ms / 1000.0
        self.deny_user = args.deny_user
        self.fsync = args.fsync
        self.lock = threading.Lock()
        self.recovering = {}  # HDFS path -> monotonic deadline
        self.owners = {}      # HDFS path -> user who created it
        self.rules = []       # fault injection rules (dicts)
        self.stats = {}
        self.nn_port = 0
        self.dn_port = 0
        self.hang = threading.Event()

    # --- paths ---------------------------------------------------------

    def local(self, path):
        """Local file for an absolute HDFS path (spec: "FileSystem URIs vs
        HTTP URLs": /webhdfs/v1/<PATH>)."""
        if not path.startswith("/"):
            raise WebHdfsError("InvalidPathException",
                               "Invalid path name " + path)
        parts = [p for p in path.split("/") if p != ""]
        for p in parts:
            if p in (".", "..") or ":" in p:
                raise WebHdfsError("InvalidPathException",
                                   "Invalid path name " + path)
        return os.path.join(self.root, *parts) if parts else self.root

    def under_recovery(self, path):
        deadline = self.recovering.get(path)
        if deadline is None:
            return False
        if time.monotonic() >= deadline:
            del self.recovering[path]
            return False
        return True

    def file_status(self, path, suffix):
        """A FileStatus object (spec "FileStatus Properties")."""
        st = os.stat(self.local(path))
        is_dir = os.path.isdir(self.local(path))
        status = {
            "accessTime": 0 if is_dir else int(st.st_atime * 1000),
            "blockSize": 0 if is_dir else self.block_size,
            "childrenNum": len(os.listdir(self.local(path))) if is_dir else 0,
            "fileId": st.st_ino,
            "group": "supergroup",
            "length": 0 if is_dir else st.st_size,
            "modificationTime": int(st.st_mtime * 1000),
            "owner": self.owners.get(path, "hdfs"),
            "pathSuffix": suffix,
            "permission": "755" if is_dir else "644",
            "replication": 0 if is_dir else 1,
            "storagePolicy": 0,
            "type": "DIRECTORY" if is_dir else "FILE",
        }
        return status

    def count(self, role, op, body_bytes):
        with self.lock:
            key = role + "." + op
            self.stats[key] = self.stats.get(key, 0) + 1
            key = role + ".body_bytes"
            self.stats[key] = self.stats.get(key, 0) + body_bytes

    def take_rule(self, role, op):
        with self.lock:
            for rule in self.rules:
                if rule["role"] == role and rule["op"] in (op, "ANY"):
                    rule["count"] -= 1
                    if rule["count"] <= 0:
                        self.rules.remove(rule)
                    return rule
        return None


def normpath(path):
    parts = [p for p in path.split("/") if p != ""]
    return "/" + "/".join(parts)


def parent_of(path):
    return normpath(path.rsplit("/", 1)[0] or "/")


def parse_bool(params, name, default):
    value = params.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise WebHdfsError("IllegalArgumentException",
                       'Invalid value for webhdfs parameter "%s": '
                       'Failed to parse "%s" to Boolean.' % (name, value))


def parse_long(params, name, default, minimum=0):
    value = params.get(name)
    if value is None or value == "" or value == "null":
        return default
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise WebHdfsError("IllegalArgumentException",
                           'Invalid value for webhdfs parameter "%s": '
                           'Invalid value: "%s" does not satisfy '
                           'the condition >= %d' % (name, value, minimum))
    return number


class Handler(http.server.BaseHTTPRequestHandler):
    """One HTTP connection; role is "namenode" or "datanode"."""

    protocol_version = "HTTP/1.1"  # keep-alive, as Jetty/Netty
    server_version = "strata-webhdfs-test/1"
    role = "namenode"
    state = None

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle
        # plus delayed ACKs stall every keep-alive exchange.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):  # quiet unless debugging
        if os.environ.get("WEBHDFS_DEBUG"):
            sys.stderr.write("%s %s\n" % (self.role, fmt % args))

    # --- plumbing ------------------------------------------------------

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line = self.rfile.readline().strip()
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def reply(self, status, body=b"", ctype=None, headers=None):
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, status, obj):
        self.reply(status, json.dumps(obj).encode(), "application/json")

    def reply_error(self, err):
        self.reply_json(err.status, {"RemoteException": {
            "exception": err.exception,
            "javaClassName": err.java,
            "message": err.message,
        }})

    def do_GET(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query,
                                             keep_blank_values=True))
        body = self.read_body()
        if self.role == "namenode" and url.path.startswith("/_test/"):
            self.test_endpoint(url.path, params)
            return
        prefix = "/webhdfs/v1"
        if not url.path.startswith(prefix):
            self.reply_error(WebHdfsError(
                "IllegalArgumentException",
                "Invalid URI: the path must start with /webhdfs/v1", 400))
            return
        path = urllib.parse.unquote(url.path[len(prefix):]) or "/"
        op = params.get("op", "").upper()
        self.state.count(self.role, op or "NONE", len(body))
        rule = self.state.take_rule(self.role, op)
        try:
            if rule is not None and rule["mode"] == "hang":
                self.state.hang.wait()
                raise DropConnection()
            if rule is not None and rule["mode"] == "drop":
                raise DropConnection()
            if rule is not None and rule["mode"] == "respond":
                raise WebHdfsError(rule["exception"], rule["message"],
                                   rule["status"], rule["java"])
            user = params.get("user.name") or DEFAULT_WEB_USER
            if self.state.deny_user and user == self.state.deny_user:
                raise WebHdfsError(
                    "AccessControlException",
                    "Permission denied: user=%s, access=WRITE, inode=\"%s\""
                    ":hdfs:supergroup:drwxr-xr-x" % (user, path))
            if self.role == "namenode":
                self.namenode(self.command, op, normpath(path), params, user,
                              rule)
            else:
                self.datanode(self.command, op, normpath(path), params, user,
                              body, rule)
        except WebHdfsError as err:
            self.reply_error(err)
        except DropConnection:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except OSError as err:
            self.reply_error(WebHdfsError("IOException", str(err)))

    def lost_reply(self, rule):
        if rule is not None and rule["mode"] == "applied_drop":
            raise DropConnection()

    def test_endpoint(self, path, params):
        st = self.state
        if path == "/_test/fail":
            exception = params.get("exception", "RetriableException")
            known = EXCEPTIONS.get(exception, ("java.io.IOException", 403))
            rule = {
                "role": params.get("role", "namenode"),
                "op": params.get("op", "ANY").upper(),
                "count": int(params.get("count", "1")),
                "mode": params.get("mode", "respond"),
                "status": int(params.get("status", "503")),
                "exception": exception,
                "java": params.get("java", known[0]),
                "message": params.get("message", "injected failure"),
            }
            with st.lock:
                st.rules.append(rule)
            self.reply_json(200, {"boolean": True})
        elif path == "/_test/reset":
            with st.lock:
                st.rules = []
                st.stats = {}
            self.reply_json(200, {"boolean": True})
        elif path == "/_test/stats":
            with st.lock:
                self.reply_json(200, dict(st.stats))
        else:
            self.reply(404)

    # --- namenode ------------------------------------------------------

    def redirect(self, path, params):
        """307 to the datanode (spec: step 1 of CREATE/APPEND, OPEN)."""
        query = dict(params)
        query["namenoderpcaddress"] = "127.0.0.1:%d" % self.state.nn_port
        location = "http://127.0.0.1:%d/webhdfs/v1%s?%s" % (
            self.state.dn_port, urllib.parse.quote(path),
            urllib.parse.urlencode(query))
        if parse_bool(params, "noredirect", False):
            self.reply_json(200, {"Location": location})
        else:
            self.reply(307, headers={"Location": location})

    def namenode(self, method, op, path, params, user, rule):
        st = self.state
        if method == "GET" and op == "GETFILESTATUS":
            # "Status of a File/Directory"
            with st.lock:
                if not os.path.lexists(st.local(path)):
                    raise WebHdfsError("FileNotFoundException",
                                       "File does not exist: " + path)
                status = st.file_status(path, "")
            self.reply_json(200, {"FileStatus": status})
        elif method == "GET" and op == "LISTSTATUS":
            # "List a Directory" / "List a File"
            with st.lock:
                local = st.local(path)
                if not os.path.lexists(local):
                    raise WebHdfsError("FileNotFoundException",
                                       "File " + path + " does not exist.")
                if os.path.isdir(local):
                    entries = [st.file_status(normpath(path + "/" + n), n)
                               for n in sorted(os.listdir(local))]
                else:
                    entries = [st.file_status(path, "")]
            self.reply_json(200, {"FileStatuses": {"FileStatus": entries}})
        elif method == "GET" and op == "GETHOMEDIRECTORY":
            self.reply_json(200, {"Path": "/user/" + user})
        elif method == "GET" and op == "OPEN":
            # NamenodeWebHdfsMethods.chooseDatanode checks the offset.
            offset = parse_long(params, "offset", 0)
            parse_long(params, "length", None)
            with st.lock:
                local = st.local(path)
                if not os.path.lexists(local):
                    raise WebHdfsError("FileNotFoundException",
                                       "File " + path + " not found.")
                size = 0 if os.path.isdir(local) else os.path.getsize(local)
            if offset >= size and size > 0:
                raise WebHdfsError(
                    "IOException", "Offset=%d out of the range [0, %d); "
                    "OPEN, path=%s" % (offset, size, path))
            self.redirect(path, params)
        elif method == "PUT" and op == "CREATE":
            parse_bool(params, "overwrite", False)
            self.redirect(path, params)
        elif method == "PUT" and op == "MKDIRS":
            with st.lock:
                self.mkdirs(path)
            self.reply_json(200, {"boolean": True})
        elif method == "POST" and op == "APPEND":
            with st.lock:
                if not os.path.isfile(st.local(path)):
                    raise WebHdfsError("FileNotFoundException",
                                       "File " + path + " not found.")
            self.redirect(path, params)
        elif method == "POST" and op == "CONCAT":
            with st.lock:
                self.concat(path, params.get("sources", ""))
                self.lost_reply(rule)
            self.reply(200)
        elif method == "POST" and op == "TRUNCATE":
            with st.lock:
                done = self.truncate(path, params)
                self.lost_reply(rule)
            self.reply_json(200, {"boolean": done})
        elif method == "DELETE" and op == "DELETE":
            with st.lock:
                done = self.delete(path, parse_bool(params, "recursive",
                                                    False))
                self.lost_reply(rule)
            self.reply_json(200, {"boolean": done})
        else:
            kind = {"GET": "GetOpParam", "PUT": "PutOpParam",
                    "POST": "PostOpParam",
                    "DELETE": "DeleteOpParam"}.get(method, "OpParam")
            raise WebHdfsError(
                "IllegalArgumentException",
                'Invalid value for webhdfs parameter "op": No enum constant '
                'org.apache.hadoop.hdfs.web.resources.%s.Op.%s' % (kind, op))

    def mkdirs(self, path):
        """Make path and its parents; a file on the way is an error."""
        st = self.state
        cur = "/"
        for part in [p for p in path.split("/") if p]:
            cur = normpath(cur + "/" + part)
            local = st.local(cur)
            if os.path.isfile(local):
                raise WebHdfsError("ParentNotDirectoryException",
                                   "Parent path is not a directory: " + cur)
            if not os.path.exists(local):
                os.mkdir(local)

    def concat(self, target, sources_param):
        """FSDirConcatOp: restrictions 1-4 of its comment, then move."""
        st = self.state
        if sources_param == "":
            raise WebHdfsError("IllegalArgumentException", "No sources given")
        local_t = st.local(target)
        if not os.path.isfile(local_t):
            raise WebHdfsError("FileNotFoundException",
                               "File does not exist: " + target)
        if st.under_recovery(target):
            raise WebHdfsError("HadoopIllegalArgumentException",
                               "concat: target file %s is under "
                               "construction" % target)
        sources = [normpath(s) for s in sources_param.split(",")]
        for src in sources:
            if not os.path.isfile(st.local(src)):
                raise WebHdfsError("FileNotFoundException",
                                   "File does not exist: " + src)
            if parent_of(src) != parent_of(target):
                raise WebHdfsError(
                    "HadoopIllegalArgumentException",
                    "Source file %s is not in the same directory with the "
                    "target %s" % (src, target))
            if src == target:
                raise WebHdfsError(
                    "HadoopIllegalArgumentException",
                    "concat: the src file %s is the same with the target "
                    "file %s" % (src, target))
            if (os.path.getsize(st.local(src)) == 0 or
                    st.under_recovery(src)):
                raise WebHdfsError(
                    "HadoopIllegalArgumentException",
                    "concat: source file %s is invalid or empty or "
                    "underConstruction" % src)
        if len(set(sources)) < len(sources):
            raise WebHdfsError("HadoopIllegalArgumentException",
                               "concat: at least two of the source files "
                               "are the same")
        with open(local_t, "ab") as out:
            for src in sources:
                with open(st.local(src), "rb") as inp:
                    shutil.copyfileobj(inp, out)
            out.flush()
            if st.fsync:
                os.fsync(out.fileno())
        for src in sources:
            os.unlink(st.local(src))
            st.owners.pop(src, None)

    def truncate(self, path, params):
        """"Truncate a File": true when done, false when the last block is
        under recovery (newlength not on a block boundary)."""
        st = self.state
        if "newlength" not in params:
            raise WebHdfsError("IllegalArgumentException",
                               'Invalid value for webhdfs parameter '
                               '"newlength": null')
        newlength = parse_long(params, "newlength", None)
        local = st.local(path)
        if not os.path.isfile(local):
            raise WebHdfsError("FileNotFoundException",
                               "File does not exist: " + path)
        if st.under_recovery(path):
            raise WebHdfsError(
                "RecoveryInProgressException",
                "Failed to TRUNCATE_FILE %s because lease recovery is in "
                "progress. Try again later." % path)
        size = os.path.getsize(local)
        if newlength > size:
            raise WebHdfsError(
                "HadoopIllegalArgumentException",
                "Cannot truncate to a larger file size. Current size: %d, "
                "truncate size: %d." % (size, newlength))
        if newlength == size:
            return True
        os.truncate(local, newlength)
        if newlength % st.block_size == 0 or st.recovery_s <= 0:
            return True
        st.recovering[path] = time.monotonic() + st.recovery_s
        return False

    def delete(self, path, recursive):
        """"Delete a File/Directory": false when there is nothing there."""
        st = self.state
        local = st.local(path)
        if path == "/" or not os.path.lexists(local):
            return False
        if os.path.isdir(local):
            if os.listdir(local) and not recursive:
                raise WebHdfsError(
                    "PathIsNotEmptyDirectoryException",
                    "`%s is non empty': Directory is not empty" % path)
            shutil.rmtree(local)
        else:
            os.unlink(local)
        st.recovering.pop(path, None)
        st.owners.pop(path, None)
        return True

    # --- datanode ------------------------------------------------------

    def datanode(self, method, op, path, params, user, body, rule):
        st = self.state
        if "namenoderpcaddress" not in params:
            raise WebHdfsError("IllegalArgumentException",
                               "namenoderpcaddress is not specified.")
        if method == "PUT" and op == "CREATE":
            overwrite = parse_bool(params, "overwrite", False)
            with st.lock:
                local = st.local(path)
                if os.path.isdir(local):
                    raise WebHdfsError(
                        "FileAlreadyExistsException",
                        "%s already exists as a directory" % path)
                if os.path.exists(local) and not overwrite:
                    raise WebHdfsError(
                        "FileAlreadyExistsException",
                        "%s for client 127.0.0.1 already exists" % path)
                self.mkdirs(parent_of(path))
                self.write(local, "wb", body)
                st.owners[path] = user
                st.recovering.pop(path, None)
                self.lost_reply(rule)
            self.reply(201, headers={
                "Location": "webhdfs://127.0.0.1:%d%s" % (st.nn_port, path)})
        elif method == "POST" and op == "APPEND":
            with st.lock:
                local = st.local(path)
                if not os.path.isfile(local):
                    raise WebHdfsError(
                        "FileNotFoundException",
                        "failed to append to non-existent file %s for "
                        "client 127.0.0.1" % path)
                if st.under_recovery(path):
                    raise WebHdfsError(
                        "RecoveryInProgressException",
                        "Failed to APPEND_FILE %s for DFSClient_webhdfs on "
                        "127.0.0.1 because lease recovery is in progress. "
                        "Try again later." % path)
                self.write(local, "ab", body)
                self.lost_reply(rule)
            self.reply(200)
        elif method == "GET" and op == "OPEN":
            offset = parse_long(params, "offset", 0)
            length = parse_long(params, "length", None)
            with st.lock:
                local = st.local(path)
                if not os.path.lexists(local):
                    raise WebHdfsError("FileNotFoundException",
                                       "File does not exist: " + path)
                if os.path.isdir(local):
                    raise WebHdfsError("FileNotFoundException",
                                       "Path is not a file: " + path)
                with open(local, "rb") as inp:
                    size = os.fstat(inp.fileno()).st_size
                    if offset > size:
                        raise WebHdfsError("EOFException",
                                           "Cannot seek after EOF")
                    inp.seek(offset)
                    count = size - offset
                    if length is not None:
                        count = min(count, length)
                    data = inp.read(count)
            self.reply(200, data, "application/octet-stream")
        else:
            raise WebHdfsError(
                "IllegalArgumentException",
                'Invalid value for webhdfs parameter "op": %s is not '
                'supported by the datanode' % op)

    def write(self, local, mode, body):
        with open(local, mode) as out:
            out.write(body)
            out.flush()
            if self.state.fsync:
                os.fsync(out.fileno())


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(args):
    # Bind first: a busy port must not leave a temporary root behind.
    servers = []
    for role, port in (("namenode", args.port),
                       ("datanode", args.datanode_port)):
        handler = type(role.capitalize() + "Handler", (Handler,),
                       {"role": role})
        servers.append(Server(("127.0.0.1", port), handler))
    made_root = args.root is None
    if made_root:
        args.root = tempfile.mkdtemp(prefix="strata-webhdfs-")
    os.makedirs(args.root, exist_ok=True)
    state = State(args)
    for srv in servers:
        srv.RequestHandlerClass.state = state
    state.nn_port = servers[0].server_address[1]
    state.dn_port = servers[1].server_address[1]
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threads = [threading.Thread(target=s.serve_forever, args=(0.1,),
                                daemon=True)
               for s in servers]
    for t in threads:
        t.start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as out:
            out.write("%d %d\n" % (state.nn_port, state.dn_port))
        os.rename(tmp, args.port_file)
    sys.stdout.write("webhdfs namenode=http://127.0.0.1:%d datanode=%d "
                     "root=%s\n" % (state.nn_port, state.dn_port, args.root))
    sys.stdout.flush()
    while not stop.wait(0.2):
        pass
    state.hang.set()
    for srv in servers:
        srv.shutdown()
        srv.server_close()
    if made_root:
        shutil.rmtree(args.root, ignore_errors=True)
    return 0


def start(args):
    """Fixture setup: run a server in the background, wait until ready.
    A server left by an earlier, interrupted run is stopped first."""
    stop(args)
    port_file = args.pid_file + ".ports"
    for f in (port_file,):
        if os.path.exists(f):
            os.unlink(f)
    cmd = [sys.executable, os.path.abspath(__file__),
           "--port", str(args.port), "--datanode-port",
           str(args.datanode_port), "--port-file", port_file,
           "--block-size", str(args.block_size),
           "--recovery-ms", str(args.recovery_ms)]
    if args.root:
        cmd += ["--root", args.root]
    if args.deny_user:
        cmd += ["--deny-user", args.deny_user]
    if args.fsync:
        cmd.append("--fsync")
    log = open(args.pid_file + ".log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL,
                            start_new_session=True)
    with open(args.pid_file, "w") as out:
        out.write("%d\n" % proc.pid)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if os.path.exists(port_file):
            print("webhdfs test server pid %d listening: %s" %
                  (proc.pid, open(port_file).read().strip()))
            return 0
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    sys.stderr.write("webhdfs test server did not start on 127.0.0.1:%d; "
                     "see %s.log (port in use? re-run cmake to pick "
                     "another port)\n" % (args.port, args.pid_file))
    return 1


def is_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def stop(args):
    """Fixture cleanup: stop the server named by the pid file."""
    try:
        pid = int(open(args.pid_file).read().strip())
    except (OSError, ValueError):
        return 0
    try:  # never signal a recycled PID that is not our server
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            ours = b"webhdfs_server.py" in f.read()
    except OSError:
        ours = False
    try:
        if not ours:
            raise ProcessLookupError()
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            if is_zombie(pid):  # exited; init has not reaped it yet
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for f in (args.pid_file, args.pid_file + ".ports"):
        if os.path.exists(f):
            os.unlink(f)
    return 0


def pick_port():
    """A port below the ephemeral range (so no client socket takes it)
    that is free right now; for CMake to give the ctest fixture."""
    import random
    rng = random.Random(os.getpid() ^ int(time.time() * 1000))
    for _ in range(200):
        port = rng.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        print(port)
        return 0
    return 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", help="directory holding the files")
    p.add_argument("--port", type=int, default=0, help="namenode port")
    p.add_argument("--datanode-port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--block-size", type=int, default=134217728)
    p.add_argument("--recovery-ms", type=int, default=20,
                   help="how long a truncated file stays under recovery")
    p.add_argument("--deny-user")
    p.add_argument("--fsync", action="store_true")
    p.add_argument("--start", action="store_true")
    p.add_argument("--stop", action="store_true")
    p.add_argument("--pid-file")
    p.add_argument("--pick-port", action="store_true")
    args = p.parse_args()
    if args.pick_port:
        return pick_port()
    if args.start or args.stop:
        if not args.pid_file:
            p.error("--start/--stop need --pid-file")
        return start(args) if args.start else stop(args)
    if args.block_size <= 0:
        p.error("--block-size must be positive")
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
