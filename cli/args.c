/* stratactl helpers without I/O to a server: option parsing, names,
 * separators, segment ids, exit codes, bounded input and JSON strings. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "common/alloc.h"
#include "common/config.h"
#include "common/hex.h"
#include "strata/error.h"
#include "strata/plugin_config.h"

__attribute__((format(printf, 2, 3))) static void errf(char *err,
                                                       const char *fmt, ...)
{
	if (err == NULL) {
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, STRATA_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
}

int cli_exit_code(int code)
{
	switch (code) {
	case STRATA_OK:
		return CLI_EXIT_OK;
	case STRATA_EINVAL:
	case STRATA_EBADNAME:
	case STRATA_ETOOBIG:
	case STRATA_ECONFIG:
		return CLI_EXIT_USAGE;
	case STRATA_EAGAIN: /* busy (back-pressure) past --timeout: retry */
	case STRATA_EUNAVAIL:
	case STRATA_ETIMEDOUT:
	case STRATA_ECONNREFUSED:
	case STRATA_ECLOSED:
	case STRATA_ENOTLEADER:
	case STRATA_ESHUTDOWN:
	case STRATA_ELEADERLOST:
		return CLI_EXIT_UNREACHABLE;
	default:
		return CLI_EXIT_FAILED;
	}
}

/* ------------------------------------------------------------ options */

/* Levenshtein distance of a and b[0..bl), capped at 9. */
static unsigned distance(const char *a, const char *b, size_t bl)
{
	size_t d = strata_edit_distance(a, strlen(a), b, bl);
	return d > 9 ? 9 : (unsigned)d;
}

static const struct cli_opt *find_opt(const struct cli_opt *opts, size_t n,
                                      const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++) {
		const char *o = opts[i].name;
		if (strlen(o) != len) {
			continue;
		}
		size_t j = 0;
		while (j < len &&
		       (o[j] == name[j] || (o[j] == '-' && name[j] == '_'))) {
			j++;
		}
		if (j == len) {
			return &opts[i];
		}
	}
	return NULL;
}

int cli_args_parse(const struct cli_opt *opts, size_t n, int argc,
                   char *const argv[], struct cli_args *out, char *err)
{
	memset(out, 0, sizeof(*out));
	bool options = true;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (options && strcmp(a, "--") == 0) {
			options = false;
			continue;
		}
		if (options &&
		    (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
			out->help = true;
			continue;
		}
		if (!options || a[0] != '-' || a[1] == '\0') {
			if (out->n_pos == CLI_MAX_POS) {
				errf(err, "too many arguments at '%.64s'", a);
				return STRATA_EINVAL;
			}
			out->pos[out->n_pos++] = a;
			continue;
		}
		if (a[1] != '-') {
			errf(err,
			     "unknown option '%.64s' (options are written "
			     "--name)",
			     a);
			return STRATA_EINVAL;
		}
		const char *name = a + 2;
		const char *eq = strchr(name, '=');
		size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
		const struct cli_opt *o = find_opt(opts, n, name, len);
		if (o == NULL) {
			const char *best = NULL;
			unsigned bd = 3;
			for (size_t j = 0; j < n; j++) {
				unsigned d = distance(opts[j].name, name, len);
				if (d < bd) {
					bd = d;
					best = opts[j].name;
				}
			}
			if (best != NULL) {
				errf(err,
				     "unknown option '--%.*s' (did you mean "
				     "'--%s'?)",
				     (int)(len > 64 ? 64 : len), name, best);
			} else {
				errf(err, "unknown option '--%.*s'",
				     (int)(len > 64 ? 64 : len), name);
			}
			return STRATA_EINVAL;
		}
		const char *value = NULL;
		if (o->has_arg) {
			if (eq != NULL) {
				value = eq + 1;
			} else if (i + 1 < argc) {
				value = argv[++i];
			} else {
				errf(err, "option '--%s' needs a value (%s)",
				     o->name,
				     o->arg != NULL ? o->arg : "VALUE");
				return STRATA_EINVAL;
			}
		} else if (eq != NULL) {
			/* --flag=false undoes an earlier --flag or one
			 * set in the environment or config file. */
			bool on;
			if (config_parse_bool(eq + 1, &on) != 0) {
				errf(err,
				     "option '--%s' takes no value, or true or "
				     "false (yes/no, on/off, 1/0), not '%.64s'",
				     o->name, eq + 1);
				return STRATA_EINVAL;
			}
			value = on ? "" : NULL;
		} else {
			value = "";
		}
		if (out->n == CLI_MAX_ITEMS) {
			errf(err, "too many options");
			return STRATA_EINVAL;
		}
		out->items[out->n].opt = o;
		out->items[out->n].value = value;
		out->n++;
	}
	return 0;
}

const char *cli_args_get(const struct cli_args *a, const char *name)
{
	const char *v = NULL;
	for (size_t i = 0; i < a->n; i++) {
		if (strcmp(a->items[i].opt->name, name) == 0) {
			v = a->items[i].value;
		}
	}
	return v;
}

bool cli_args_has(const struct cli_args *a, const char *name)
{
	return cli_args_get(a, name) != NULL;
}

bool cli_args_given(const struct cli_args *a, const char *name)
{
	for (size_t i = 0; i < a->n; i++) {
		if (strcmp(a->items[i].opt->name, name) == 0) {
			return true;
		}
	}
	return false;
}

size_t cli_args_all(const struct cli_args *a, const char *name,
                    const char **values, size_t max)
{
	size_t k = 0;
	for (size_t i = 0; i < a->n; i++) {
		if (strcmp(a->items[i].opt->name, name) == 0) {
			if (k < max) {
				values[k] = a->items[i].value;
			}
			k++;
		}
	}
	return k;
}

void cli_opts_print(const struct cli_opt *opts, size_t n, FILE *out)
{
	for (size_t i = 0; i < n; i++) {
		char head[64];
		snprintf(head, sizeof(head), "--%s%s%s", opts[i].name,
		         opts[i].has_arg ? " " : "",
		         opts[i].has_arg
		                 ? (opts[i].arg != NULL ? opts[i].arg : "VALUE")
		                 : "");
		if (strlen(head) < 22) {
			fprintf(out, "  %-22s %s\n", head, opts[i].help);
		} else {
			fprintf(out, "  %s\n  %-22s %s\n", head, "",
			        opts[i].help);
		}
	}
}

/* -------------------------------------------------------------- names */

int cli_split_stream(const char *text, char *scope, char *stream, char *err)
{
	const char *slash = strchr(text, '/');
	if (slash == NULL || strchr(slash + 1, '/') != NULL) {
		errf(err,
		     "'%.100s' is not SCOPE/STREAM; write the scope, one '/' "
		     "and the stream, e.g. demo/first",
		     text);
		return STRATA_EINVAL;
	}
	size_t sl = (size_t)(slash - text);
	size_t tl = strlen(slash + 1);
	if (sl == 0 || tl == 0) {
		errf(err, "'%.100s': the %s name is empty; e.g. demo/first",
		     text, sl == 0 ? "scope" : "stream");
		return STRATA_EINVAL;
	}
	if (sl > STRATA_NAME_MAX || tl > STRATA_NAME_MAX) {
		errf(err, "'%.40s...': a name is longer than %d bytes", text,
		     STRATA_NAME_MAX);
		return STRATA_EINVAL;
	}
	memcpy(scope, text, sl);
	scope[sl] = '\0';
	memcpy(stream, slash + 1, tl + 1);
	return 0;
}

int cli_unescape(const char *text, char *out, size_t size, size_t *len,
                 char *err)
{
	size_t k = 0;
	for (const char *p = text; *p != '\0'; p++) {
		char c = *p;
		if (c == '\\') {
			p++;
			switch (*p) {
			case 't':
				c = '\t';
				break;
			case 'n':
				c = '\n';
				break;
			case 'r':
				c = '\r';
				break;
			case '\\':
				c = '\\';
				break;
			case 'x': {
				int h = hex_value(p[1]);
				int l = h >= 0 ? hex_value(p[2]) : -1;
				if (l < 0) {
					errf(err,
					     "separator '%.40s': \\x needs two "
					     "hex digits",
					     text);
					return STRATA_EINVAL;
				}
				c = (char)(h * 16 + l);
				p += 2;
				break;
			}
			default:
				errf(err,
				     "separator '%.40s': unknown escape; use "
				     "\\t, \\n, \\r, \\\\ or \\xHH",
				     text);
				return STRATA_EINVAL;
			}
		}
		if (c == '\0' || c == '\n') {
			errf(err,
			     "separator '%.40s' may not contain a NUL or a "
			     "newline (lines end at the newline)",
			     text);
			return STRATA_EINVAL;
		}
		if (k + 1 >= size) {
			errf(err, "separator '%.40s' is too long", text);
			return STRATA_EINVAL;
		}
		out[k++] = c;
	}
	if (k == 0) {
		errf(err, "the separator is empty; e.g. --key-separator "
		          "'\\t'");
		return STRATA_EINVAL;
	}
	out[k] = '\0';
	*len = k;
	return 0;
}

/* Decimal uint64 of s[0..len) (no sign, no spaces); false if not one. */
static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
	if (len == 0 || len > 20) {
		return false;
	}
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return false;
		}
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10) {
			return false;
		}
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

int cli_parse_segment_id(const char *text, uint64_t *id, char *err)
{
	const char *dot = strchr(text, '.');
	uint64_t num, epoch;
	if (dot == NULL) {
		if (parse_u64(text, strlen(text), id)) {
			return 0;
		}
	} else if (parse_u64(text, (size_t)(dot - text), &num) &&
	           parse_u64(dot + 1, strlen(dot + 1), &epoch) &&
	           num <= UINT32_MAX && epoch <= UINT32_MAX) {
		*id = epoch << 32 | num;
		return 0;
	}
	errf(err,
	     "'%.60s' is not a segment: write NUMBER.EPOCH as 'stream "
	     "describe' shows it (e.g. 3.1)",
	     text);
	return STRATA_EINVAL;
}

void cli_format_segment_id(uint64_t id, char *buf, size_t size)
{
	snprintf(buf, size, "%" PRIu32 ".%" PRIu32,
	         (uint32_t)(id & 0xffffffffu), (uint32_t)(id >> 32));
}

int cli_parse_bounds(const char *text, double *out, size_t max, size_t *n,
                     char *err)
{
	size_t k = 0;
	const char *p = text;
	for (;;) {
		char *end = NULL;
		errno = 0;
		double v = strtod(p, &end);
		if (end == p || errno != 0 || (*end != ',' && *end != '\0') ||
		    !(v >= 0.0 && v <= 1.0)) {
			errf(err,
			     "bounds '%.80s': item %zu is not a number in "
			     "[0,1]; e.g. 0,0.5,1",
			     text, k + 1);
			return STRATA_EINVAL;
		}
		if (k > 0 && !(v > out[k - 1])) {
			errf(err,
			     "bounds '%.80s': they must increase (item %zu)",
			     text, k + 1);
			return STRATA_EINVAL;
		}
		if (k == max) {
			errf(err, "bounds '%.80s': more than %zu items", text,
			     max);
			return STRATA_EINVAL;
		}
		out[k++] = v;
		if (*end == '\0') {
			break;
		}
		p = end + 1;
	}
	if (k < 2) {
		errf(err, "bounds '%.80s': give at least two, e.g. 0,0.5,1",
		     text);
		return STRATA_EINVAL;
	}
	*n = k;
	return 0;
}

/* ------------------------------------------------------------- input */

void cli_reader_init(struct cli_reader *r, FILE *in, bool prefixed, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->in = in;
	r->prefixed = prefixed;
	r->max = max;
}

void cli_reader_close(struct cli_reader *r)
{
	strata_free(r->buf);
	r->buf = NULL;
	r->cap = 0;
}

/* Make room for need bytes in r->buf. */
static int reserve(struct cli_reader *r, size_t need)
{
	if (need <= r->cap) {
		return 0;
	}
	size_t cap = r->cap != 0 ? r->cap : 4096;
	while (cap < need) {
		cap *= 2;
	}
	uint8_t *b = strata_realloc(r->buf, cap);
	if (b == NULL) {
		return STRATA_ENOMEM;
	}
	r->buf = b;
	r->cap = cap;
	return 0;
}

static int next_prefixed(struct cli_reader *r, const uint8_t **data,
                         size_t *len, char *err)
{
	uint8_t h[4];
	size_t got = fread(h, 1, 4, r->in);
	if (got == 0 && feof(r->in)) {
		return 0;
	}
	uint64_t rec = r->record + 1;
	if (got < 4) {
		if (ferror(r->in)) {
			goto ioerr;
		}
		errf(err,
		     "record %" PRIu64 ": input ends inside its 4-byte "
		     "length",
		     rec);
		return STRATA_EINVAL; /* bad input: exit 2 */
	}
	size_t n = (size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16 |
	           (size_t)h[3] << 24;
	if (n > r->max) {
		errf(err,
		     "record %" PRIu64 ": event of %zu bytes is over the "
		     "limit of %zu bytes",
		     rec, n, r->max);
		return STRATA_ETOOBIG;
	}
	if (reserve(r, n + 1) != 0) {
		errf(err, "out of memory");
		return STRATA_ENOMEM;
	}
	if (fread(r->buf, 1, n, r->in) != n) {
		if (ferror(r->in)) {
			goto ioerr;
		}
		errf(err,
		     "record %" PRIu64 ": input ends inside its %zu bytes "
		     "of data",
		     rec, n);
		return STRATA_EINVAL; /* bad input: exit 2 */
	}
	r->record = rec;
	*data = r->buf;
	*len = n;
	return 0;
ioerr:
	errf(err, "reading record %" PRIu64 ": %s", rec, strerror(errno));
	return STRATA_EIO;
}

static int next_line(struct cli_reader *r, const uint8_t **data, size_t *len,
                     char *err)
{
	size_t n = 0;
	uint64_t rec = r->record + 1;
	for (;;) {
		int c = getc_unlocked(r->in); /* one reader thread */
		if (c == EOF) {
			if (ferror(r->in)) {
				errf(err, "reading line %" PRIu64 ": %s", rec,
				     strerror(errno));
				return STRATA_EIO;
			}
			if (n == 0) {
				return 0;
			}
			break;
		}
		if (c == '\n') {
			break;
		}
		if (n == r->max) {
			errf(err,
			     "line %" PRIu64 ": event is over the limit of "
			     "%zu bytes",
			     rec, r->max);
			return STRATA_ETOOBIG;
		}
		if (n + 1 >= r->cap && reserve(r, n + 2) != 0) {
			errf(err, "out of memory");
			return STRATA_ENOMEM;
		}
		r->buf[n++] = (uint8_t)c;
	}
	if (reserve(r, n + 1) != 0) {
		errf(err, "out of memory");
		return STRATA_ENOMEM;
	}
	r->buf[n] = 0;
	r->record = rec;
	*data = r->buf;
	*len = n;
	return 0;
}

int cli_reader_next(struct cli_reader *r, const uint8_t **data, size_t *len,
                    char *err)
{
	*data = NULL;
	*len = 0;
	return r->prefixed ? next_prefixed(r, data, len, err)
	                   : next_line(r, data, len, err);
}

/* ------------------------------------------------------------- JSON */

/* Length of the valid UTF-8 sequence at s[0..n), 0 if invalid. */
static size_t utf8_len(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];
	size_t k;
	uint32_t min;
	if (c < 0x80) {
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		k = 2;
		min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		k = 3;
		min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		k = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < k) {
		return 0;
	}
	uint32_t cp = c & (0x7fu >> k);
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			return 0;
		}
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
		return 0;
	}
	return k;
}

void cli_json_string(FILE *out, const void *s, size_t len)
{
	const uint8_t *p = s;
	putc('"', out);
	for (size_t i = 0; i < len;) {
		uint8_t c = p[i];
		if (c == '"' || c == '\\') {
			putc('\\', out);
			putc(c, out);
			i++;
		} else if (c == '\n') {
			fputs("\\n", out);
			i++;
		} else if (c == '\t') {
			fputs("\\t", out);
			i++;
		} else if (c == '\r') {
			fputs("\\r", out);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(out, "\\u%04x", c);
			i++;
		} else {
			size_t k = utf8_len(p + i, len - i);
			if (k == 0) {
				fprintf(out, "\\u%04x", c);
				i++;
			} else {
				fwrite(p + i, 1, k, out);
				i += k;
			}
		}
	}
	putc('"', out);
}
