/* Configuration loader (see config.h): schema, YAML file, env, flags. */
#include "common/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "common/alloc.h"
#include "common/log.h"
#include "strata/error.h"
#include "strata/plugin_config.h"

#define ENV_PREFIX "STRATA_"
#define ENV_NAME_SIZE (sizeof(ENV_PREFIX) + CONFIG_NAME_MAX)
#define FLAG_NAME_SIZE (2 + CONFIG_NAME_MAX + 1)
#define NONE ((size_t)-1)

/* Values quoted in messages are clipped to this many bytes. */
#define CLIP_FMT "'%.80s%s'"
#define CLIP_ARG(s) (s), (strlen(s) > 80 ? "..." : "")

/* A parsed value; which member depends on the key's type. */
union config_num {
	int64_t i;  /* CONFIG_INT */
	uint64_t u; /* CONFIG_UINT, CONFIG_DURATION (ms), CONFIG_SIZE */
	bool b;     /* CONFIG_BOOL */
	size_t e;   /* CONFIG_ENUM: index into allowed */
};

/* Current value of one schema key. */
struct config_value {
	char *raw;          /* as written (owned); NULL: unset */
	char *source;       /* "file:line", "env X", "flag --x" (owned); NULL:
	                       default */
	union config_num v; /* parsed raw */
};

/* One scalar leaf of a CONFIG_SECTION key. */
struct config_leaf {
	size_t section; /* schema index of the section */
	char *name;     /* full dotted name (owned) */
	char *raw;      /* value (owned) */
	char *source;   /* like config_value.source (owned) */
};

/* How a dotted name relates to the schema. */
enum kind {
	K_UNKNOWN, /* not a key, nothing below it */
	K_SCALAR,  /* a key of a value type */
	K_SECTION, /* a CONFIG_SECTION key */
	K_LEAF,    /* below a CONFIG_SECTION key */
	K_GROUP,   /* a proper prefix of keys ("raft" for "raft.x") */
};

__attribute__((format(printf, 3, 4))) static int
fail(struct config *cfg, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cfg->err, sizeof(cfg->err), fmt, ap);
	va_end(ap);
	return rc;
}

static int oom(struct config *cfg)
{
	return fail(cfg, STRATA_ENOMEM,
	            "out of memory while loading the configuration");
}

/* Bounded string builder for messages and help text. */
struct sbuf {
	char *p;    /* buffer */
	size_t cap; /* its size */
	size_t len; /* bytes used, NUL excluded; may exceed cap - 1 */
};

__attribute__((format(printf, 2, 3))) static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	if (b->len + 1 >= b->cap) {
		b->len = b->cap;
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += n > 0 ? (size_t)n : 0;
}

static bool sb_full(const struct sbuf *b)
{
	return b->len + 1 >= b->cap;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Components of [a-z0-9_] joined by single dots, 1..CONFIG_NAME_MAX. */
static bool valid_name(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > CONFIG_NAME_MAX) {
		return false;
	}
	bool start = true;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (start) {
				return false;
			}
			start = true;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '_')) {
			return false;
		}
		start = false;
	}
	return !start;
}

/* True when s is prefix followed by '.' and more. */
static bool under(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);
	return strncmp(s, prefix, n) == 0 && s[n] == '.';
}

/* STRATA_ + name upper-cased, '.' -> '_'. name is a valid name. */
static void env_name(const char *name, char buf[ENV_NAME_SIZE])
{
	size_t n = strlen(ENV_PREFIX);
	memcpy(buf, ENV_PREFIX, n);
	for (const char *p = name; *p != '\0'; p++) {
		char c = *p;
		buf[n++] = c == '.' ? '_' : (c >= 'a' && c <= 'z') ? c - 32 : c;
	}
	buf[n] = '\0';
}

/* "--" + name with '_' -> '-'. name is a valid name. */
static void flag_name(const char *name, char buf[FLAG_NAME_SIZE])
{
	size_t n = 2;
	buf[0] = '-';
	buf[1] = '-';
	for (const char *p = name; *p != '\0'; p++) {
		buf[n++] = *p == '_' ? '-' : *p;
	}
	buf[n] = '\0';
}

/* ---- value syntaxes ---- */

/* Decimal digits at *p into *v (saturating; *overflow set); advances *p.
 * False when there is no digit. */
static bool scan_digits(const char **p, uint64_t *v, bool *overflow)
{
	const char *s = *p;
	if (!is_digit(*s)) {
		return false;
	}
	*v = 0;
	*overflow = false;
	for (; is_digit(*s); s++) {
		uint64_t d = (uint64_t)(*s - '0');
		if (*v > (UINT64_MAX - d) / 10) {
			*overflow = true;
			*v = UINT64_MAX;
		} else if (!*overflow) {
			*v = *v * 10 + d;
		}
	}
	*p = s;
	return true;
}

int config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return STRATA_EINVAL;
}

int config_parse_uint(const char *s, uint64_t *out)
{
	const char *p = s;
	uint64_t v;
	bool overflow;
	if (*p == '+') {
		p++;
	}
	if (!scan_digits(&p, &v, &overflow) || *p != '\0') {
		return STRATA_EINVAL;
	}
	if (overflow) {
		return STRATA_ERANGE;
	}
	*out = v;
	return 0;
}

int config_parse_int(const char *s, int64_t *out)
{
	const char *p = s;
	bool neg = *p == '-';
	uint64_t v;
	bool overflow;
	if (*p == '-' || *p == '+') {
		p++;
	}
	if (!scan_digits(&p, &v, &overflow) || *p != '\0') {
		return STRATA_EINVAL;
	}
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	if (overflow || v > limit) {
		return STRATA_ERANGE;
	}
	if (neg) {
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	} else {
		*out = (int64_t)v;
	}
	return 0;
}

/* A unit suffix and its multiplier. */
struct unit {
	const char *name;
	uint64_t mult;
};

/* digits + one of units (exact match); bare "0" when zero_ok. */
static int parse_with_unit(const char *s, const struct unit *units, size_t n,
                           bool zero_ok, uint64_t *out)
{
	const char *p = s;
	uint64_t v;
	bool overflow;
	if (!scan_digits(&p, &v, &overflow)) {
		return STRATA_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(p, units[i].name) != 0) {
			continue;
		}
		if (overflow || v > UINT64_MAX / units[i].mult) {
			return STRATA_ERANGE;
		}
		*out = v * units[i].mult;
		return 0;
	}
	if (*p == '\0' && zero_ok && v == 0 && !overflow) {
		*out = 0;
		return 0;
	}
	return STRATA_EINVAL;
}

int config_parse_duration_ms(const char *s, uint64_t *out)
{
	static const struct unit units[] = {
	        {"ms", 1},          {"s", 1000},         {"m", 60 * 1000},
	        {"h", 3600 * 1000}, {"d", 86400 * 1000},
	};
	return parse_with_unit(s, units, sizeof(units) / sizeof(*units), true,
	                       out);
}

int config_parse_size(const char *s, uint64_t *out)
{
	static const struct unit units[] = {
	        {"", 1},
	        {"B", 1},
	        {"KiB", 1ull << 10},
	        {"MiB", 1ull << 20},
	        {"GiB", 1ull << 30},
	        {"TiB", 1ull << 40},
	        {"K", 1ull << 10},
	        {"k", 1ull << 10},
	        {"M", 1ull << 20},
	        {"m", 1ull << 20},
	        {"G", 1ull << 30},
	        {"g", 1ull << 30},
	        {"T", 1ull << 40},
	        {"t", 1ull << 40},
	        {"KB", 1000ull},
	        {"kB", 1000ull},
	        {"MB", 1000ull * 1000},
	        {"GB", 1000ull * 1000 * 1000},
	        {"TB", 1000ull * 1000 * 1000 * 1000},
	};
	return parse_with_unit(s, units, sizeof(units) / sizeof(*units), false,
	                       out);
}

/* Parse s as a number of a numeric or bool type, no bounds. */
static int parse_num(enum config_type type, const char *s, union config_num *v)
{
	switch (type) {
	case CONFIG_INT:
		return config_parse_int(s, &v->i);
	case CONFIG_UINT:
		return config_parse_uint(s, &v->u);
	case CONFIG_DURATION:
		return config_parse_duration_ms(s, &v->u);
	case CONFIG_SIZE:
		return config_parse_size(s, &v->u);
	case CONFIG_BOOL:
		return config_parse_bool(s, &v->b);
	default:
		return STRATA_EINVAL;
	}
}

static bool is_numeric(enum config_type type)
{
	return type == CONFIG_INT || type == CONFIG_UINT ||
	       type == CONFIG_DURATION || type == CONFIG_SIZE;
}

/* a < b for the representation type uses. */
static bool num_less(enum config_type type, union config_num a,
                     union config_num b)
{
	return type == CONFIG_INT ? a.i < b.i : a.u < b.u;
}

static const char *type_noun(enum config_type type)
{
	switch (type) {
	case CONFIG_INT:
		return "an integer";
	case CONFIG_UINT:
		return "a non-negative integer";
	case CONFIG_BOOL:
		return "a boolean";
	case CONFIG_DURATION:
		return "a duration";
	case CONFIG_SIZE:
		return "a size";
	default:
		return "a value";
	}
}

static const char *type_hint(enum config_type type)
{
	switch (type) {
	case CONFIG_INT:
		return "use a whole number, e.g. 42 or -7";
	case CONFIG_UINT:
		return "use a whole number, e.g. 42";
	case CONFIG_BOOL:
		return "use true or false (or yes/no, on/off, 1/0)";
	case CONFIG_DURATION:
		return "use a number with ms, s, m, h or d, e.g. 500ms";
	case CONFIG_SIZE:
		return "use a number of bytes with an optional unit KiB, MiB, "
		       "GiB, TiB (or K, M, G, T: x1024) or KB, MB, GB, TB "
		       "(x1000), e.g. 64MiB";
	default:
		return "";
	}
}

/* Append "one of: a, b, c" for an enum. */
static void list_allowed(struct sbuf *b, const struct config_key *k)
{
	sb_printf(b, "one of: ");
	for (size_t i = 0; k->allowed[i] != NULL; i++) {
		sb_printf(b, "%s%s", i > 0 ? ", " : "", k->allowed[i]);
	}
}

/* Append the allowed range of a numeric key, e.g. "from 1s to 1h". */
static void describe_range(struct sbuf *b, const struct config_key *k)
{
	if (k->min != NULL && k->max != NULL) {
		sb_printf(b, "from %s to %s", k->min, k->max);
	} else if (k->min != NULL) {
		sb_printf(b, "of at least %s", k->min);
	} else if (k->max != NULL) {
		sb_printf(b, "of at most %s", k->max);
	} else {
		sb_printf(b, "that fits in 64 bits");
	}
}

/*
 * Parse raw for key k into *out, checking the type, the enum list and the
 * bounds. On failure returns STRATA_ECONFIG and writes into why a reason
 * that quotes the value and says what is allowed.
 */
static int parse_value(const struct config_key *k, const char *raw,
                       union config_num *out, char *why, size_t why_size)
{
	struct sbuf b = {why, why_size, 0};
	union config_num v = {0};
	why[0] = '\0';
	switch (k->type) {
	case CONFIG_STRING:
	case CONFIG_SECTION:
		*out = v;
		return 0;
	case CONFIG_ENUM:
		for (size_t i = 0; k->allowed[i] != NULL; i++) {
			if (strcasecmp(raw, k->allowed[i]) == 0) {
				out->e = i;
				return 0;
			}
		}
		sb_printf(&b, CLIP_FMT " is not allowed; use ", CLIP_ARG(raw));
		list_allowed(&b, k);
		return STRATA_ECONFIG;
	default:
		break;
	}
	int rc = parse_num(k->type, raw, &v);
	if (rc == STRATA_EINVAL) {
		sb_printf(&b, CLIP_FMT " is not %s; %s", CLIP_ARG(raw),
		          type_noun(k->type), type_hint(k->type));
		return STRATA_ECONFIG;
	}
	union config_num lo, hi;
	bool out_of_range = rc != 0;
	if (!out_of_range && k->min != NULL &&
	    parse_num(k->type, k->min, &lo) == 0 && num_less(k->type, v, lo)) {
		out_of_range = true;
	}
	if (!out_of_range && k->max != NULL &&
	    parse_num(k->type, k->max, &hi) == 0 && num_less(k->type, hi, v)) {
		out_of_range = true;
	}
	if (out_of_range) {
		sb_printf(&b, CLIP_FMT " is out of range; use a value ",
		          CLIP_ARG(raw));
		describe_range(&b, k);
		return STRATA_ECONFIG;
	}
	*out = v;
	return 0;
}

/* ---- schema ---- */

/* Index of the schema key named name, or NONE. */
static size_t find_key(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n; i++) {
		if (strcmp(cfg->schema[i].name, name) == 0) {
			return i;
		}
	}
	return NONE;
}

/* How name relates to the schema; *idx is the key or section index. */
static enum kind classify(const struct config *cfg, const char *name,
                          size_t *idx)
{
	size_t i = find_key(cfg, name);
	*idx = i;
	if (i != NONE) {
		return cfg->schema[i].type == CONFIG_SECTION ? K_SECTION
		                                             : K_SCALAR;
	}
	enum kind kind = K_UNKNOWN;
	for (i = 0; i < cfg->n; i++) {
		const struct config_key *k = &cfg->schema[i];
		if (k->type == CONFIG_SECTION && under(name, k->name)) {
			*idx = i;
			return K_LEAF;
		}
		if (under(k->name, name)) {
			kind = K_GROUP;
		}
	}
	return kind;
}

/* Check key i against the ones before it and on its own. */
static int check_key(struct config *cfg, size_t i)
{
	const struct config_key *k = &cfg->schema[i];
	char env[ENV_NAME_SIZE];
	char why[CONFIG_ERRMSG_SIZE / 2];
	union config_num v, lo, hi;

	if (k->name == NULL || !valid_name(k->name)) {
		return fail(
		        cfg, STRATA_EINVAL,
		        "config schema: key %zu: name '%s' is not components "
		        "of [a-z0-9_] joined by '.' (at most %d bytes)",
		        i, k->name != NULL ? k->name : "(null)",
		        CONFIG_NAME_MAX);
	}
	if (strcmp(k->name, "config") == 0 || strcmp(k->name, "help") == 0 ||
	    strcmp(k->name, "version") == 0 || under(k->name, "config") ||
	    under(k->name, "help") || under(k->name, "version")) {
		return fail(cfg, STRATA_EINVAL,
		            "config schema: key '%s': 'config', 'help' and "
		            "'version' are reserved for --config, --help and "
		            "--version",
		            k->name);
	}
	if (k->help == NULL || (unsigned)k->type > CONFIG_SECTION ||
	    (k->flags & ~(CONFIG_REQUIRED | CONFIG_SECRET)) != 0) {
		return fail(cfg, STRATA_EINVAL,
		            "config schema: key '%s': needs help text, a valid "
		            "type and only CONFIG_REQUIRED/CONFIG_SECRET flags",
		            k->name);
	}
	env_name(k->name, env);
	if (strcmp(env, ENV_PREFIX "CONFIG") == 0) {
		return fail(cfg, STRATA_EINVAL,
		            "config schema: key '%s': its variable %s is "
		            "reserved",
		            k->name, env);
	}
	for (size_t j = 0; j < i; j++) {
		const struct config_key *o = &cfg->schema[j];
		char oenv[ENV_NAME_SIZE];
		env_name(o->name, oenv);
		size_t el = strlen(env);
		size_t ol = strlen(oenv);
		if (strcmp(o->name, k->name) == 0) {
			return fail(cfg, STRATA_EINVAL,
			            "config schema: key '%s' is declared twice",
			            k->name);
		}
		if (under(o->name, k->name) || under(k->name, o->name)) {
			return fail(
			        cfg, STRATA_EINVAL,
			        "config schema: keys '%s' and '%s' clash: a "
			        "key cannot also be a group of keys",
			        o->name, k->name);
		}
		if (strcmp(env, oenv) == 0 ||
		    (o->type == CONFIG_SECTION && el > ol &&
		     strncmp(env, oenv, ol) == 0 && env[ol] == '_') ||
		    (k->type == CONFIG_SECTION && ol > el &&
		     strncmp(oenv, env, el) == 0 && oenv[el] == '_')) {
			return fail(
			        cfg, STRATA_EINVAL,
			        "config schema: keys '%s' and '%s' clash in "
			        "the environment (%s, %s)",
			        o->name, k->name, oenv, env);
		}
	}
	bool numeric = is_numeric(k->type);
	bool enumerated = k->type == CONFIG_ENUM;
	if ((!numeric && (k->min != NULL || k->max != NULL)) ||
	    (enumerated != (k->allowed != NULL)) ||
	    (enumerated && (k->allowed[0] == NULL))) {
		return fail(cfg, STRATA_EINVAL,
		            "config schema: key '%s': min/max are for numeric "
		            "types only; allowed (non-empty) for enums only",
		            k->name);
	}
	for (size_t j = 0; enumerated && k->allowed[j] != NULL; j++) {
		if (k->allowed[j][0] == '\0') {
			return fail(
			        cfg, STRATA_EINVAL,
			        "config schema: key '%s': empty allowed value",
			        k->name);
		}
	}
	bool required = (k->flags & CONFIG_REQUIRED) != 0;
	if (k->type == CONFIG_SECTION && k->def != NULL) {
		return fail(cfg, STRATA_EINVAL,
		            "config schema: key '%s': a section has no default",
		            k->name);
	}
	if (required && k->def != NULL) {
		return fail(cfg, STRATA_EINVAL,
		            "config schema: key '%s': a required key has no "
		            "default",
		            k->name);
	}
	if (!required && k->def == NULL && k->type != CONFIG_STRING &&
	    k->type != CONFIG_SECTION) {
		return fail(cfg, STRATA_EINVAL,
		            "config schema: key '%s': needs a default or "
		            "CONFIG_REQUIRED",
		            k->name);
	}
	if ((k->min != NULL && parse_num(k->type, k->min, &lo) != 0) ||
	    (k->max != NULL && parse_num(k->type, k->max, &hi) != 0) ||
	    (k->min != NULL && k->max != NULL && num_less(k->type, hi, lo))) {
		return fail(cfg, STRATA_EINVAL,
		            "config schema: key '%s': bad bounds [%s, %s]",
		            k->name, k->min != NULL ? k->min : "",
		            k->max != NULL ? k->max : "");
	}
	if (k->def != NULL && parse_value(k, k->def, &v, why, sizeof(why))) {
		return fail(cfg, STRATA_EINVAL,
		            "config schema: key '%s': default %s", k->name,
		            why);
	}
	return 0;
}

int config_init(struct config *cfg, const struct config_key *schema, size_t n)
{
	char why[8];
	memset(cfg, 0, sizeof(*cfg));
	cfg->schema = schema;
	cfg->n = n;
	for (size_t i = 0; i < n; i++) {
		int rc = check_key(cfg, i);
		if (rc != 0) {
			cfg->n = 0;
			return rc;
		}
	}
	cfg->values = strata_calloc(n > 0 ? n : 1, sizeof(*cfg->values));
	if (cfg->values == NULL) {
		cfg->n = 0;
		return oom(cfg);
	}
	for (size_t i = 0; i < n; i++) {
		const struct config_key *k = &schema[i];
		if (k->def == NULL) {
			continue;
		}
		cfg->values[i].raw = strata_strdup(k->def);
		if (cfg->values[i].raw == NULL) {
			config_close(cfg);
			return oom(cfg);
		}
		(void)parse_value(k, k->def, &cfg->values[i].v, why,
		                  sizeof(why));
	}
	return 0;
}

void config_close(struct config *cfg)
{
	if (cfg->values != NULL) {
		for (size_t i = 0; i < cfg->n; i++) {
			strata_free(cfg->values[i].raw);
			strata_free(cfg->values[i].source);
		}
	}
	for (size_t i = 0; i < cfg->n_leaves; i++) {
		strata_free(cfg->leaves[i].name);
		strata_free(cfg->leaves[i].raw);
		strata_free(cfg->leaves[i].source);
	}
	strata_free(cfg->values);
	strata_free(cfg->leaves);
	strata_free(cfg->path);
	cfg->values = NULL;
	cfg->leaves = NULL;
	cfg->path = NULL;
	cfg->n = 0;
	cfg->n_leaves = 0;
	cfg->cap_leaves = 0;
}

const char *config_errmsg(const struct config *cfg)
{
	return cfg->err;
}

/* ---- setting values ---- */

/* Set key i from raw; where is the source ("f.yaml:3", "env X", ...). */
static int set_scalar(struct config *cfg, size_t i, const char *raw,
                      const char *where)
{
	const struct config_key *k = &cfg->schema[i];
	char why[CONFIG_ERRMSG_SIZE / 2];
	union config_num v;
	if (parse_value(k, raw, &v, why, sizeof(why)) != 0) {
		return fail(cfg, STRATA_ECONFIG, "%s: %s: %s", where, k->name,
		            why);
	}
	char *r = strata_strdup(raw);
	char *s = strata_strdup(where);
	if (r == NULL || s == NULL) {
		strata_free(r);
		strata_free(s);
		return oom(cfg);
	}
	struct config_value *val = &cfg->values[i];
	strata_free(val->raw);
	strata_free(val->source);
	val->raw = r;
	val->source = s;
	val->v = v;
	return 0;
}

/* Set the leaf full (a valid name under section sec) to raw. */
static int set_leaf(struct config *cfg, size_t sec, const char *full,
                    const char *raw, const char *where)
{
	if (strchr(raw, '\n') != NULL) {
		return fail(cfg, STRATA_ECONFIG,
		            "%s: %s: values in section '%s' must fit on one "
		            "line",
		            where, full, cfg->schema[sec].name);
	}
	struct config_leaf *leaf = NULL;
	for (size_t i = 0; i < cfg->n_leaves; i++) {
		struct config_leaf *l = &cfg->leaves[i];
		if (strcmp(l->name, full) == 0) {
			leaf = l;
			continue;
		}
		if (under(l->name, full) || under(full, l->name)) {
			return fail(
			        cfg, STRATA_ECONFIG,
			        "%s: '%s' clashes with '%s' (set at %s): a "
			        "key cannot hold both a value and other keys",
			        where, full, l->name, l->source);
		}
	}
	char *r = strata_strdup(raw);
	char *s = strata_strdup(where);
	char *name = leaf == NULL ? strata_strdup(full) : NULL;
	if (r == NULL || s == NULL || (leaf == NULL && name == NULL)) {
		goto err_free;
	}
	if (leaf == NULL) {
		if (cfg->n_leaves == cfg->cap_leaves) {
			size_t cap =
			        cfg->cap_leaves > 0 ? cfg->cap_leaves * 2 : 8;
			struct config_leaf *l = strata_realloc(
			        cfg->leaves, cap * sizeof(*cfg->leaves));
			if (l == NULL) {
				goto err_free;
			}
			cfg->leaves = l;
			cfg->cap_leaves = cap;
		}
		leaf = &cfg->leaves[cfg->n_leaves++];
		leaf->section = sec;
		leaf->name = name;
		leaf->raw = NULL;
		leaf->source = NULL;
	}
	strata_free(leaf->raw);
	strata_free(leaf->source);
	leaf->raw = r;
	leaf->source = s;
	return 0;

err_free:
	strata_free(r);
	strata_free(s);
	strata_free(name);
	return oom(cfg);
}

/* ---- unknown keys ---- */

static size_t edit_distance(const char *a, const char *b)
{
	return strata_edit_distance(a, strlen(a), b, strlen(b));
}

/* Closest name to name within a third of its length (at most 3 edits),
 * into best; false if none. Candidates are value keys and, unless
 * values_only, sections and groups too. */
static bool suggest(const struct config *cfg, const char *name,
                    bool values_only, char best[CONFIG_NAME_MAX + 1])
{
	size_t best_d = NONE;
	size_t len = strlen(name);
	for (size_t i = 0; i < cfg->n; i++) {
		const char *k = cfg->schema[i].name;
		if (values_only && cfg->schema[i].type == CONFIG_SECTION) {
			continue;
		}
		/* The key itself and each group above it ("a", "a.b"). */
		for (const char *dot = k;; dot++) {
			if (*dot != '.' && *dot != '\0') {
				continue;
			}
			if (values_only && *dot != '\0') {
				continue;
			}
			char cand[CONFIG_NAME_MAX + 1];
			size_t n = (size_t)(dot - k);
			memcpy(cand, k, n);
			cand[n] = '\0';
			size_t d = edit_distance(name, cand);
			if (d >= 1 && d <= 3 && d * 3 <= len && d < best_d) {
				best_d = d;
				memcpy(best, cand, n + 1);
			}
			if (*dot == '\0') {
				break;
			}
		}
	}
	return best_d != NONE;
}

/* Append the names one level below group ("" = top level), each once. */
static void list_children(struct sbuf *b, const struct config *cfg,
                          const char *group)
{
	size_t gl = strlen(group);
	size_t off = gl > 0 ? gl + 1 : 0;
	bool first = true;
	for (size_t i = 0; i < cfg->n; i++) {
		const char *k = cfg->schema[i].name;
		if (gl > 0 && !under(k, group)) {
			continue;
		}
		size_t cl = strcspn(k + off, ".");
		bool dup = false;
		for (size_t j = 0; j < i && !dup; j++) {
			const char *o = cfg->schema[j].name;
			dup = (gl == 0 || under(o, group)) &&
			      strncmp(o + off, k + off, cl) == 0 &&
			      (o[off + cl] == '.' || o[off + cl] == '\0');
		}
		if (!dup) {
			sb_printf(b, "%s%.*s", first ? "" : ", ", (int)cl,
			          k + off);
			first = false;
		}
	}
	if (first) {
		sb_printf(b, "(none)");
	}
}

/* STRATA_ECONFIG for an unknown key name found at where. */
static int unknown_key(struct config *cfg, const char *where, const char *name)
{
	char msg[CONFIG_ERRMSG_SIZE];
	char best[CONFIG_NAME_MAX + 1];
	char group[CONFIG_NAME_MAX + 1] = "";
	struct sbuf b = {msg, sizeof(msg), 0};
	size_t idx;

	sb_printf(&b, "%s: unknown key " CLIP_FMT, where, CLIP_ARG(name));
	if (suggest(cfg, name, false, best)) {
		sb_printf(&b, " (did you mean '%s'?)", best);
	}
	/* The deepest group above name, to list what it holds. */
	size_t nl = strnlen(name, CONFIG_NAME_MAX);
	for (size_t i = nl; i > 0; i--) {
		if (name[i] != '.') {
			continue;
		}
		memcpy(group, name, i);
		group[i] = '\0';
		if (classify(cfg, group, &idx) == K_GROUP) {
			break;
		}
		group[0] = '\0';
	}
	if (group[0] != '\0') {
		sb_printf(&b, "; keys under '%s': ", group);
	} else {
		sb_printf(&b, "; top-level keys: ");
	}
	list_children(&b, cfg, group);
	if (sb_full(&b)) {
		memcpy(msg + sizeof(msg) - 4, "...", 4);
	}
	return fail(cfg, STRATA_ECONFIG, "%s", msg);
}

/* ---- YAML file ---- */

/* A full name seen in the file, to reject duplicates. */
struct seen {
	char *name;  /* owned */
	size_t line; /* 1-based */
};

/* State of one file load. */
struct yaml_ctx {
	struct config *cfg;
	yaml_parser_t parser;
	const char *path; /* borrowed */
	struct seen *seen;
	size_t n_seen;
	size_t cap_seen;
	char where[PATH_MAX + 32]; /* "path:line" of the key being read */
};

static int yaml_fail(struct yaml_ctx *y)
{
	yaml_parser_t *p = &y->parser;
	if (p->error == YAML_MEMORY_ERROR) {
		return oom(y->cfg);
	}
	if (p->error == YAML_READER_ERROR) {
		return fail(y->cfg, STRATA_ECONFIG,
		            "%s: cannot read the file: %s at byte %zu; save it "
		            "as UTF-8 text",
		            y->path, p->problem != NULL ? p->problem : "error",
		            p->problem_offset);
	}
	char ctx[256] = "";
	if (p->context != NULL) {
		snprintf(ctx, sizeof(ctx), " (%s at line %zu, column %zu)",
		         p->context, p->context_mark.line + 1,
		         p->context_mark.column + 1);
	}
	return fail(y->cfg, STRATA_ECONFIG,
	            "%s:%zu:%zu: YAML syntax error: %s%s; check the "
	            "indentation and the ': ' after each key",
	            y->path, p->problem_mark.line + 1,
	            p->problem_mark.column + 1,
	            p->problem != NULL ? p->problem : "unknown problem", ctx);
}

static int next_event(struct yaml_ctx *y, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&y->parser, ev)) {
		return yaml_fail(y);
	}
	return 0;
}

static size_t line_of(const yaml_event_t *ev)
{
	return ev->start_mark.line + 1;
}

/* A plain null scalar: empty, "~" or "null". */
static bool is_null(const yaml_event_t *ev)
{
	if (ev->type != YAML_SCALAR_EVENT ||
	    ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
		return false;
	}
	const char *s = (const char *)ev->data.scalar.value;
	return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	       strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static const char *node_kind(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SEQUENCE_START_EVENT:
		return "a list";
	case YAML_MAPPING_START_EVENT:
		return "a map";
	case YAML_ALIAS_EVENT:
		return "an alias (*name; aliases are not supported)";
	default:
		return "a value";
	}
}

/* Remember full at line; STRATA_ECONFIG if the file already had it. */
static int seen_add(struct yaml_ctx *y, const char *full, size_t line)
{
	for (size_t i = 0; i < y->n_seen; i++) {
		if (strcmp(y->seen[i].name, full) == 0) {
			return fail(y->cfg, STRATA_ECONFIG,
			            "%s:%zu: duplicate key '%s' (first at line "
			            "%zu); keep only one",
			            y->path, line, full, y->seen[i].line);
		}
	}
	if (y->n_seen == y->cap_seen) {
		size_t cap = y->cap_seen > 0 ? y->cap_seen * 2 : 16;
		struct seen *s = strata_realloc(y->seen, cap * sizeof(*s));
		if (s == NULL) {
			return oom(y->cfg);
		}
		y->seen = s;
		y->cap_seen = cap;
	}
	char *name = strata_strdup(full);
	if (name == NULL) {
		return oom(y->cfg);
	}
	y->seen[y->n_seen].name = name;
	y->seen[y->n_seen].line = line;
	y->n_seen++;
	return 0;
}

static int walk_map(struct yaml_ctx *y, const char *prefix, size_t sec);

/* Consume the value of key full (at line) and apply it. sec is the
 * section full is in, or NONE. */
static int walk_value(struct yaml_ctx *y, const char *full, size_t line,
                      size_t sec)
{
	struct config *cfg = y->cfg;
	char *where = y->where; /* shared: not used after recursing */
	yaml_event_t ev;
	size_t idx = sec;
	enum kind kind = K_LEAF;
	int rc;

	snprintf(where, sizeof(y->where), "%s:%zu", y->path, line);
	if (sec == NONE) {
		kind = valid_name(full) ? classify(cfg, full, &idx) : K_UNKNOWN;
	} else if (!valid_name(full)) {
		return fail(cfg, STRATA_ECONFIG,
		            "%s: " CLIP_FMT " is not a valid key in section "
		            "'%s'; use lowercase letters, digits and '_'",
		            where, CLIP_ARG(full), cfg->schema[sec].name);
	}
	if (kind == K_UNKNOWN) {
		return unknown_key(cfg, where, full);
	}
	rc = seen_add(y, full, line);
	if (rc != 0) {
		return rc;
	}
	rc = next_event(y, &ev);
	if (rc != 0) {
		return rc;
	}
	bool scalar = ev.type == YAML_SCALAR_EVENT;
	bool map = ev.type == YAML_MAPPING_START_EVENT;
	if (scalar && strlen((const char *)ev.data.scalar.value) !=
	                      ev.data.scalar.length) {
		rc = fail(cfg, STRATA_ECONFIG,
		          "%s: %s: the value contains a NUL byte", where, full);
	} else if (kind == K_SCALAR) {
		const struct config_key *k = &cfg->schema[idx];
		if (!scalar) {
			rc = fail(cfg, STRATA_ECONFIG,
			          "%s: %s: expected one value, found %s; %s",
			          where, full, node_kind(&ev),
			          k->type == CONFIG_ENUM
			                  ? "use one of its allowed values"
			          : k->type == CONFIG_STRING
			                  ? "quote the text"
			                  : type_hint(k->type));
		} else if (is_null(&ev)) {
			rc = fail(cfg, STRATA_ECONFIG,
			          "%s: %s has no value; give one or remove the "
			          "line to use the default",
			          where, full);
		} else {
			rc = set_scalar(cfg, idx,
			                (const char *)ev.data.scalar.value,
			                where);
		}
	} else if (map) {
		rc = walk_map(y, full, kind == K_GROUP ? NONE : idx);
	} else if (kind == K_LEAF && scalar && !is_null(&ev)) {
		rc = set_leaf(cfg, idx, full,
		              (const char *)ev.data.scalar.value, where);
	} else if (kind == K_LEAF && scalar) {
		rc = fail(cfg, STRATA_ECONFIG,
		          "%s: %s has no value; give one (\"\" for empty) or "
		          "remove the line",
		          where, full);
	} else if (kind == K_LEAF) {
		rc = fail(cfg, STRATA_ECONFIG,
		          "%s: %s: expected one value, found %s; write a list "
		          "as one comma-separated string",
		          where, full, node_kind(&ev));
	} else if (is_null(&ev)) {
		rc = 0; /* "raft:" with nothing below: an empty group */
	} else if (kind == K_SECTION) {
		rc = fail(cfg, STRATA_ECONFIG,
		          "%s: %s is a section: expected a map of option: "
		          "value lines below it, found %s",
		          where, full, node_kind(&ev));
	} else {
		char msg[CONFIG_ERRMSG_SIZE / 2];
		struct sbuf b = {msg, sizeof(msg), 0};
		list_children(&b, cfg, full);
		rc = fail(cfg, STRATA_ECONFIG,
		          "%s: '%s' holds other keys (%s): expected them "
		          "indented below it, found %s",
		          where, full, msg, node_kind(&ev));
	}
	yaml_event_delete(&ev);
	return rc;
}

/* Consume the pairs of a map whose start event was read; prefix is its
 * full name ("" at the top), sec the section it is in or NONE. Recursion
 * depth is bounded: every level adds 2+ bytes to a name of at most
 * CONFIG_NAME_MAX. */
static int walk_map(struct yaml_ctx *y, const char *prefix, size_t sec)
{
	for (;;) {
		yaml_event_t ev;
		int rc = next_event(y, &ev);
		if (rc != 0) {
			return rc;
		}
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		size_t line = line_of(&ev);
		if (ev.type != YAML_SCALAR_EVENT) {
			rc = fail(y->cfg, STRATA_ECONFIG,
			          "%s:%zu: a key must be a plain name, not %s",
			          y->path, line, node_kind(&ev));
			yaml_event_delete(&ev);
			return rc;
		}
		const char *key = (const char *)ev.data.scalar.value;
		size_t kl = ev.data.scalar.length;
		size_t pl = strlen(prefix);
		char full[CONFIG_NAME_MAX + 2];
		if (strlen(key) != kl) {
			rc = fail(y->cfg, STRATA_ECONFIG,
			          "%s:%zu: a key contains a NUL byte", y->path,
			          line);
			yaml_event_delete(&ev);
			return rc;
		}
		if (pl + (pl > 0) + kl > CONFIG_NAME_MAX) {
			rc = fail(
			        y->cfg, STRATA_ECONFIG,
			        "%s:%zu: key '%s%s%.40s...' is longer than %d "
			        "bytes",
			        y->path, line, prefix, pl > 0 ? "." : "", key,
			        CONFIG_NAME_MAX);
			yaml_event_delete(&ev);
			return rc;
		}
		snprintf(full, sizeof(full), "%s%s%s", prefix,
		         pl > 0 ? "." : "", kl > 0 ? key : "\"\"");
		yaml_event_delete(&ev);
		rc = walk_value(y, full, line, sec);
		if (rc != 0) {
			return rc;
		}
	}
}

/* Read the YAML file at path into cfg. */
static int load_file(struct config *cfg, const char *path)
{
	struct yaml_ctx y = {.cfg = cfg, .path = path};
	yaml_event_t ev;
	struct stat st;
	int rc;

	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		return fail(cfg, STRATA_ECONFIG,
		            "open config file %s: %s; check the path given "
		            "with --config or STRATA_CONFIG",
		            path, strerror(errno));
	}
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		return fail(cfg, STRATA_ECONFIG,
		            "open config file %s: it is a directory; give the "
		            "path of a YAML file",
		            path);
	}
	cfg->path = strata_strdup(path);
	if (cfg->path == NULL) {
		fclose(f);
		return oom(cfg);
	}
	if (!yaml_parser_initialize(&y.parser)) {
		fclose(f);
		return oom(cfg);
	}
	yaml_parser_set_input_file(&y.parser, f);

	/* STREAM-START, then nothing or one document holding a map. */
	rc = next_event(&y, &ev);
	if (rc != 0) {
		goto out;
	}
	yaml_event_delete(&ev);
	rc = next_event(&y, &ev);
	if (rc != 0 || ev.type == YAML_STREAM_END_EVENT) {
		goto out_event;
	}
	yaml_event_delete(&ev); /* DOCUMENT-START */
	rc = next_event(&y, &ev);
	if (rc != 0) {
		goto out;
	}
	if (ev.type == YAML_MAPPING_START_EVENT) {
		yaml_event_delete(&ev);
		rc = walk_map(&y, "", NONE);
		if (rc != 0) {
			goto out;
		}
	} else if (is_null(&ev)) {
		yaml_event_delete(&ev);
	} else {
		rc = fail(cfg, STRATA_ECONFIG,
		          "%s:%zu: expected a map of key: value lines at the "
		          "top, found %s",
		          path, line_of(&ev), node_kind(&ev));
		goto out_event;
	}
	rc = next_event(&y, &ev); /* DOCUMENT-END */
	if (rc != 0) {
		goto out;
	}
	yaml_event_delete(&ev);
	rc = next_event(&y, &ev);
	if (rc == 0 && ev.type != YAML_STREAM_END_EVENT) {
		rc = fail(cfg, STRATA_ECONFIG,
		          "%s:%zu: a second YAML document ('---'); put "
		          "everything in one",
		          path, line_of(&ev));
	}
out_event:
	yaml_event_delete(&ev); /* a failed parse leaves it zeroed */
out:
	for (size_t i = 0; i < y.n_seen; i++) {
		strata_free(y.seen[i].name);
	}
	strata_free(y.seen);
	yaml_parser_delete(&y.parser);
	fclose(f);
	return rc;
}

/* ---- environment ---- */

/* Value of NAME in envp, or NULL. */
static const char *env_get(char *const envp[], const char *name)
{
	size_t len = strlen(name);
	for (char *const *e = envp; *e != NULL; e++) {
		if (strncmp(*e, name, len) == 0 && (*e)[len] == '=') {
			return *e + len + 1;
		}
	}
	return NULL;
}

/* Leaves of section sec from STRATA_<SECTION>_<KEY> variables. */
static int env_section(struct config *cfg, size_t sec, char *const envp[])
{
	char prefix[ENV_NAME_SIZE + 1];
	env_name(cfg->schema[sec].name, prefix);
	strcat(prefix, "_");
	size_t pl = strlen(prefix);
	for (char *const *e = envp; *e != NULL; e++) {
		if (strncmp(*e, prefix, pl) != 0) {
			continue;
		}
		const char *eq = strchr(*e, '=');
		if (eq == NULL) {
			continue;
		}
		char var[ENV_NAME_SIZE + CONFIG_NAME_MAX];
		char where[sizeof(var) + 8];
		char full[CONFIG_NAME_MAX + 1];
		size_t vl = (size_t)(eq - *e);
		size_t sl = strlen(cfg->schema[sec].name);
		snprintf(var, sizeof(var), "%.*s", (int)vl, *e);
		snprintf(where, sizeof(where), "env %s", var);
		bool ok = vl > pl && sl + 1 + (vl - pl) <= CONFIG_NAME_MAX;
		for (size_t i = pl; ok && i < vl; i++) {
			char c = (*e)[i];
			ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     is_digit(c) || c == '_';
		}
		if (!ok) {
			return fail(cfg, STRATA_ECONFIG,
			            "%s: not a valid key of section '%s'; use "
			            "%s<KEY> with letters, digits and '_'",
			            where, cfg->schema[sec].name, prefix);
		}
		memcpy(full, cfg->schema[sec].name, sl);
		full[sl] = '.';
		for (size_t i = pl; i < vl; i++) {
			char c = (*e)[i];
			full[sl + 1 + i - pl] =
			        (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
		}
		full[sl + 1 + vl - pl] = '\0';
		int rc = set_leaf(cfg, sec, full, eq + 1, where);
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

/* Warn about STRATA_* variables that look like a misspelt key of ours:
 * they are otherwise ignored (other programs have other keys). */
static void env_warn_near_misses(const struct config *cfg, char *const envp[])
{
	for (char *const *e = envp; *e != NULL; e++) {
		const char *eq = strchr(*e, '=');
		if (eq == NULL ||
		    strncmp(*e, ENV_PREFIX, strlen(ENV_PREFIX)) != 0 ||
		    (size_t)(eq - *e) >= ENV_NAME_SIZE) {
			continue;
		}
		char var[ENV_NAME_SIZE];
		size_t vl = (size_t)(eq - *e);
		memcpy(var, *e, vl);
		var[vl] = '\0';
		if (strcmp(var, ENV_PREFIX "CONFIG") == 0) {
			continue;
		}
		size_t best_d = NONE;
		char best[ENV_NAME_SIZE] = "";
		bool ours = false;
		for (size_t i = 0; i < cfg->n && !ours; i++) {
			char env[ENV_NAME_SIZE];
			env_name(cfg->schema[i].name, env);
			size_t el = strlen(env);
			ours = strcmp(var, env) == 0 ||
			       (cfg->schema[i].type == CONFIG_SECTION &&
			        strncmp(var, env, el) == 0 && var[el] == '_');
			size_t d = edit_distance(var, env);
			if (d < best_d) {
				best_d = d;
				memcpy(best, env, el + 1);
			}
		}
		if (!ours && best_d >= 1 && best_d <= 2) {
			LOG_WARN("config",
			         "environment variable %s is not used by this "
			         "program; did you mean %s?",
			         var, best);
		}
	}
}

static int load_env(struct config *cfg, char *const envp[])
{
	char var[ENV_NAME_SIZE];
	char where[ENV_NAME_SIZE + 8];
	for (size_t i = 0; i < cfg->n; i++) {
		int rc;
		if (cfg->schema[i].type == CONFIG_SECTION) {
			rc = env_section(cfg, i, envp);
		} else {
			env_name(cfg->schema[i].name, var);
			const char *v = env_get(envp, var);
			if (v == NULL) {
				continue;
			}
			snprintf(where, sizeof(where), "env %s", var);
			rc = set_scalar(cfg, i, v, where);
		}
		if (rc != 0) {
			return rc;
		}
	}
	env_warn_near_misses(cfg, envp);
	return 0;
}

/* ---- flags ---- */

/* One flag from argv, applied after the file and the environment. */
struct pending {
	size_t idx;                     /* schema key (or section of a leaf) */
	bool leaf;                      /* name is a section leaf */
	char name[CONFIG_NAME_MAX + 1]; /* normalized full name */
	const char *value;              /* borrowed from argv */
	const char *arg; /* the flag as typed, borrowed from argv */
	int arg_len;     /* bytes of arg before any '=' */
};

/* STRATA_ECONFIG for the unknown flag arg (name normalized or NULL). */
static int unknown_flag(struct config *cfg, const char *arg, int arg_len,
                        const char *name)
{
	char best[CONFIG_NAME_MAX + 1];
	char flag[FLAG_NAME_SIZE];
	char hint[FLAG_NAME_SIZE + 32] = "";
	if (name != NULL && suggest(cfg, name, true, best)) {
		flag_name(best, flag);
		snprintf(hint, sizeof(hint), " (did you mean '%s'?)", flag);
	}
	return fail(cfg, STRATA_ECONFIG,
	            "unknown flag '%.*s'%s; run with --help to list the flags",
	            arg_len > 120 ? 120 : arg_len, arg, hint);
}

/*
 * Parse argv into p (room for argc entries) and *n; *config_path gets the
 * --config value (borrowed) and *pos the first positional index. Sets
 * cfg->help and stops at --help.
 */
static int parse_flags(struct config *cfg, int argc, char *const argv[],
                       struct pending *p, size_t *n, const char **config_path,
                       int *pos)
{
	int i;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0') {
			break;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			cfg->help = true;
			i++;
			break;
		}
		if (strcmp(a, "--version") == 0) {
			cfg->version = true;
			i++;
			break;
		}
		const char *body = a + 2;
		const char *eq = strchr(body, '=');
		size_t bl = eq != NULL ? (size_t)(eq - body) : strlen(body);
		int al = (int)(bl + 2 < 4096 ? bl + 2 : 4096);
		if (a[1] != '-' || bl == 0 || bl > CONFIG_NAME_MAX) {
			return unknown_flag(cfg, a, al, NULL);
		}
		struct pending *f = &p[*n];
		for (size_t j = 0; j < bl; j++) {
			f->name[j] = body[j] == '-' ? '_' : body[j];
		}
		f->name[bl] = '\0';
		f->arg = a;
		f->arg_len = al;
		bool is_config = strcmp(f->name, "config") == 0;
		enum kind kind = K_UNKNOWN;
		if (!is_config && valid_name(f->name)) {
			kind = classify(cfg, f->name, &f->idx);
		}
		if (!is_config && (kind == K_UNKNOWN || kind == K_GROUP)) {
			return unknown_flag(cfg, a, al, f->name);
		}
		if (kind == K_SECTION) {
			return fail(
			        cfg, STRATA_ECONFIG,
			        "flag %.*s: '%s' is a section; set its keys "
			        "one by one, e.g. %.*s.<key>=VALUE",
			        al, a, f->name, al, a);
		}
		if (eq != NULL) {
			f->value = eq + 1;
		} else if (kind == K_SCALAR &&
		           cfg->schema[f->idx].type == CONFIG_BOOL) {
			f->value = "true";
		} else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
			f->value = argv[++i];
		} else {
			const char *meta = is_config ? "FILE" : "VALUE";
			return fail(
			        cfg, STRATA_ECONFIG,
			        "flag %.*s needs a value: %.*s=%s or %.*s %s",
			        al, a, al, a, meta, al, a, meta);
		}
		if (is_config) {
			if (f->value[0] == '\0') {
				return fail(cfg, STRATA_ECONFIG,
				            "flag --config needs a file name");
			}
			*config_path = f->value;
			continue;
		}
		f->leaf = kind == K_LEAF;
		(*n)++;
	}
	*pos = i > argc ? argc : i; /* argc may be 0 */
	return 0;
}

static int apply_flags(struct config *cfg, const struct pending *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char where[FLAG_NAME_SIZE + 8];
		snprintf(where, sizeof(where), "flag %.*s", p[i].arg_len,
		         p[i].arg);
		int rc = p[i].leaf
		                 ? set_leaf(cfg, p[i].idx, p[i].name,
		                            p[i].value, where)
		                 : set_scalar(cfg, p[i].idx, p[i].value, where);
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

/* STRATA_ECONFIG naming the first required key nobody set. */
static int check_required(struct config *cfg)
{
	for (size_t i = 0; i < cfg->n; i++) {
		const struct config_key *k = &cfg->schema[i];
		if ((k->flags & CONFIG_REQUIRED) == 0 ||
		    config_is_set(cfg, k->name)) {
			continue;
		}
		char env[ENV_NAME_SIZE];
		char flag[FLAG_NAME_SIZE];
		env_name(k->name, env);
		flag_name(k->name, flag);
		bool sec = k->type == CONFIG_SECTION;
		return fail(cfg, STRATA_ECONFIG,
		            "missing required key '%s' (%s); set it in the "
		            "config file, as %s%s in the environment or with "
		            "%s%s=VALUE",
		            k->name, k->help, env, sec ? "_<KEY>" : "", flag,
		            sec ? ".<key>" : "");
	}
	return 0;
}

int config_load(struct config *cfg, int argc, char *const argv[],
                char *const envp[], int *first_arg)
{
	const char *path = NULL;
	size_t n = 0;
	int pos = argc;
	int rc;

	if (cfg->values == NULL || cfg->loaded) {
		return fail(cfg, STRATA_EINVAL,
		            "config_load: call once, after a successful "
		            "config_init");
	}
	if (envp == NULL) {
		envp = environ;
	}
	struct pending *p =
	        strata_calloc(argc > 0 ? (size_t)argc : 1, sizeof(*p));
	if (p == NULL) {
		return oom(cfg);
	}
	rc = parse_flags(cfg, argc, argv, p, &n, &path, &pos);
	/* A user asking for help gets it, whatever else is wrong (a bad
	 * flag, or --version before it); then --version likewise. */
	for (int i = 1; (rc == STRATA_ECONFIG || cfg->version) && !cfg->help &&
	                i < argc && strcmp(argv[i], "--") != 0;
	     i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			cfg->help = true;
			cfg->version = false;
			cfg->err[0] = '\0';
			rc = 0;
			pos = i + 1;
		}
	}
	for (int i = 1;
	     rc == STRATA_ECONFIG && i < argc && strcmp(argv[i], "--") != 0;
	     i++) {
		if (strcmp(argv[i], "--version") == 0) {
			cfg->version = true;
			cfg->err[0] = '\0';
			rc = 0;
			pos = i + 1;
		}
	}
	if (rc != 0 || cfg->help || cfg->version) {
		goto out;
	}
	if (pos < argc && first_arg == NULL) {
		rc = fail(cfg, STRATA_ECONFIG,
		          "unexpected argument " CLIP_FMT "; this program "
		          "takes only --flags (run with --help to list them)",
		          CLIP_ARG(argv[pos]));
		goto out;
	}
	if (path == NULL) {
		path = env_get(envp, ENV_PREFIX "CONFIG");
		if (path != NULL && path[0] == '\0') {
			path = NULL;
		}
	}
	if (path != NULL) {
		rc = load_file(cfg, path);
		if (rc != 0) {
			goto out;
		}
	}
	rc = load_env(cfg, envp);
	if (rc != 0) {
		goto out;
	}
	rc = apply_flags(cfg, p, n);
	if (rc != 0) {
		goto out;
	}
	rc = check_required(cfg);
	if (rc != 0) {
		goto out;
	}
	cfg->loaded = true;
out:
	if (rc == 0 && first_arg != NULL) {
		*first_arg = pos;
	}
	strata_free(p);
	return rc;
}

bool config_help_requested(const struct config *cfg)
{
	return cfg->help;
}

bool config_version_requested(const struct config *cfg)
{
	return cfg->version;
}

const char *config_file(const struct config *cfg)
{
	return cfg->path;
}

/* ---- getters ---- */

__attribute__((noreturn)) static void bug(const char *key, const char *what)
{
	fprintf(stderr, "config: programming error: key '%s' %s\n",
	        key != NULL ? key : "(null)", what);
	abort();
}

/* Value of key, which must exist with type t. */
static const struct config_value *get(const struct config *cfg, const char *key,
                                      enum config_type t)
{
	size_t i = key != NULL ? find_key(cfg, key) : NONE;
	if (i == NONE) {
		bug(key, "is not in the schema");
	}
	if (cfg->schema[i].type != t) {
		bug(key, "is read with a getter of another type");
	}
	return &cfg->values[i];
}

int64_t config_get_int(const struct config *cfg, const char *key)
{
	return get(cfg, key, CONFIG_INT)->v.i;
}

uint64_t config_get_uint(const struct config *cfg, const char *key)
{
	return get(cfg, key, CONFIG_UINT)->v.u;
}

bool config_get_bool(const struct config *cfg, const char *key)
{
	return get(cfg, key, CONFIG_BOOL)->v.b;
}

const char *config_get_string(const struct config *cfg, const char *key)
{
	size_t i = key != NULL ? find_key(cfg, key) : NONE;
	if (i != NONE && cfg->schema[i].type == CONFIG_ENUM) {
		return cfg->schema[i].allowed[cfg->values[i].v.e];
	}
	return get(cfg, key, CONFIG_STRING)->raw;
}

size_t config_get_enum(const struct config *cfg, const char *key)
{
	return get(cfg, key, CONFIG_ENUM)->v.e;
}

uint64_t config_get_duration_ms(const struct config *cfg, const char *key)
{
	return get(cfg, key, CONFIG_DURATION)->v.u;
}

uint64_t config_get_size(const struct config *cfg, const char *key)
{
	return get(cfg, key, CONFIG_SIZE)->v.u;
}

int config_check_duration_below(const struct config *cfg, const char *lo,
                                const char *hi, char *errmsg)
{
	uint64_t a = config_get_duration_ms(cfg, lo);
	uint64_t b = config_get_duration_ms(cfg, hi);
	if (a < b) {
		return 0;
	}
	snprintf(errmsg, STRATA_ERRMSG_SIZE,
	         "%s (%" PRIu64 " ms) must be below %s (%" PRIu64
	         " ms); lower %s or raise %s",
	         lo, a, hi, b, lo, hi);
	return STRATA_ECONFIG;
}

/* "HOST:PORT" or "[V6]:PORT" at s (len bytes): host into h (size hs),
 * the port into *port. False when malformed or the port is not 0..65535. */
static bool split_hostport(const char *s, size_t len, char *h, size_t hs,
                           unsigned *port)
{
	const char *colon = NULL;
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (close == NULL || close + 1 >= s + len || close[1] != ':') {
			return false;
		}
		colon = close + 1;
	} else {
		for (size_t i = len; i-- > 0;) {
			if (s[i] == ':') {
				colon = s + i;
				break;
			}
		}
	}
	size_t hl = colon != NULL ? (size_t)(colon - s) : 0;
	size_t pl = colon != NULL ? len - hl - 1 : 0;
	if (colon == NULL || hl == 0 || hl >= hs || pl == 0 || pl > 5) {
		return false;
	}
	unsigned v = 0;
	for (size_t i = 0; i < pl; i++) {
		if (colon[1 + i] < '0' || colon[1 + i] > '9') {
			return false;
		}
		v = v * 10 + (unsigned)(colon[1 + i] - '0');
	}
	if (v > 65535) {
		return false;
	}
	memcpy(h, s, hl);
	h[hl] = '\0';
	*port = v;
	return true;
}

/* One URL or address of form at s (len bytes); host/port when it has
 * them (*port = 0 and host "" otherwise). */
static bool addr_ok(enum config_addr_form form, const char *s, size_t len,
                    char *host, size_t hs, unsigned *port)
{
	host[0] = '\0';
	*port = 0;
	const char *prefix = form == CONFIG_ADDR_HTTP ? "http://" : "tcp://";
	size_t pn = strlen(prefix);
	if (form == CONFIG_ADDR_HOSTPORT) {
		return split_hostport(s, len, host, hs, port);
	}
	if (form == CONFIG_ADDR_IPV4PORT) {
		struct in_addr a;
		return split_hostport(s, len, host, hs, port) &&
		       inet_pton(AF_INET, host, &a) == 1;
	}
	if (form != CONFIG_ADDR_HTTP) {
		if (len > 6 && strncmp(s, "ipc://", 6) == 0) {
			return true;
		}
		if (len > 9 && strncmp(s, "inproc://", 9) == 0) {
			return true;
		}
	}
	if (len <= pn || strncmp(s, prefix, pn) != 0) {
		return false;
	}
	if (form == CONFIG_ADDR_HTTP && s[len - 1] == '/') {
		len--;
	}
	return split_hostport(s + pn, len - pn, host, hs, port);
}

static bool wildcard(const char *h)
{
	return h[0] == '\0' || strcmp(h, "0.0.0.0") == 0 ||
	       strcmp(h, "[::]") == 0 || strcmp(h, "*") == 0;
}

int config_check_addresses(const struct config *cfg,
                           const struct config_addr *keys, size_t n,
                           char *errmsg)
{
	static const char *const want[] = {
	        [CONFIG_ADDR_RPC] = "tcp://HOST:PORT",
	        [CONFIG_ADDR_HTTP] = "http://HOST:PORT",
	        [CONFIG_ADDR_HOSTPORT] = "HOST:PORT",
	        [CONFIG_ADDR_RPC_LIST] = "tcp://HOST:PORT[,tcp://...]",
	        [CONFIG_ADDR_IPV4PORT] = "IPv4:PORT (an address, not a name)",
	};
	char hosts[16][256];
	unsigned ports[16];
	for (size_t i = 0; i < n && i < 16; i++) {
		const char *v = config_get_string(cfg, keys[i].key);
		ports[i] = 0;
		hosts[i][0] = '\0';
		enum config_addr_form f = keys[i].form == CONFIG_ADDR_RPC_LIST
		                                  ? CONFIG_ADDR_RPC
		                                  : keys[i].form;
		const char *p = v;
		while (*p != '\0') {
			size_t len = keys[i].form == CONFIG_ADDR_RPC_LIST
			                     ? strcspn(p, ",")
			                     : strlen(p);
			if (!addr_ok(f, p, len, hosts[i], sizeof(hosts[i]),
			             &ports[i])) {
				snprintf(
				        errmsg, STRATA_ERRMSG_SIZE,
				        "%s (%s): '%.80s' is not %s with a "
				        "port "
				        "of 0..65535; e.g. %s",
				        keys[i].key,
				        config_source(cfg, keys[i].key), v,
				        want[keys[i].form],
				        f == CONFIG_ADDR_HTTP
				                ? "http://0.0.0.0:9091"
				        : f == CONFIG_ADDR_HOSTPORT ||
				                        f == CONFIG_ADDR_IPV4PORT
				                ? "0.0.0.0:9190"
				                : "tcp://127.0.0.1:9090");
				return STRATA_ECONFIG;
			}
			p += len;
			p += *p == ',';
		}
		for (size_t j = 0; keys[i].listen && ports[i] != 0 && j < i;
		     j++) {
			if (keys[j].listen && ports[j] == ports[i] &&
			    (strcmp(hosts[i], hosts[j]) == 0 ||
			     wildcard(hosts[i]) || wildcard(hosts[j]))) {
				snprintf(errmsg, STRATA_ERRMSG_SIZE,
				         "%s and %s both listen on port %u; "
				         "give "
				         "each its own port",
				         keys[j].key, keys[i].key, ports[i]);
				return STRATA_ECONFIG;
			}
		}
	}
	return 0;
}

bool config_is_set(const struct config *cfg, const char *key)
{
	size_t i = key != NULL ? find_key(cfg, key) : NONE;
	if (i == NONE) {
		bug(key, "is not in the schema");
	}
	if (cfg->schema[i].type != CONFIG_SECTION) {
		return cfg->values[i].source != NULL;
	}
	for (size_t j = 0; j < cfg->n_leaves; j++) {
		if (cfg->leaves[j].section == i) {
			return true;
		}
	}
	return false;
}

const char *config_source(const struct config *cfg, const char *key)
{
	size_t i = key != NULL ? find_key(cfg, key) : NONE;
	if (i != NONE) {
		if (cfg->schema[i].type == CONFIG_SECTION) {
			bug(key, "is a section: ask for one of its leaves");
		}
		const char *s = cfg->values[i].source;
		return s != NULL ? s : "default";
	}
	for (size_t j = 0; j < cfg->n_leaves; j++) {
		if (strcmp(cfg->leaves[j].name, key) == 0) {
			return cfg->leaves[j].source;
		}
	}
	if (classify(cfg, key, &i) != K_LEAF) {
		bug(key, "is not in the schema");
	}
	return NULL;
}

int config_section_flatten(const struct config *cfg, const char *section,
                           char **out)
{
	size_t sec = get(cfg, section, CONFIG_SECTION) - cfg->values;
	size_t off = strlen(section) + 1;
	size_t total = 1;
	for (size_t i = 0; i < cfg->n_leaves; i++) {
		const struct config_leaf *l = &cfg->leaves[i];
		if (l->section == sec) {
			total += strlen(l->name) - off + 1 + strlen(l->raw) + 1;
		}
	}
	char *s = strata_malloc(total);
	if (s == NULL) {
		return STRATA_ENOMEM;
	}
	size_t len = 0;
	for (size_t i = 0; i < cfg->n_leaves; i++) {
		const struct config_leaf *l = &cfg->leaves[i];
		if (l->section == sec) {
			len += (size_t)snprintf(s + len, total - len, "%s=%s\n",
			                        l->name + off, l->raw);
		}
	}
	s[len] = '\0';
	*out = s;
	return 0;
}

/* ---- help and dump ---- */

static const char *type_meta(enum config_type type)
{
	switch (type) {
	case CONFIG_INT:
		return "INT";
	case CONFIG_UINT:
		return "N";
	case CONFIG_BOOL:
		return "BOOL";
	case CONFIG_STRING:
		return "STRING";
	case CONFIG_DURATION:
		return "DURATION";
	case CONFIG_SIZE:
		return "SIZE";
	default:
		return "VALUE";
	}
}

void config_print_help(const struct config_key *schema, size_t n, FILE *out)
{
	fprintf(out,
	        "Flags (each key can also be set in the --config YAML file "
	        "and as a STRATA_*\nvariable; flags win over the "
	        "environment, which wins over the file):\n"
	        "  --config=FILE\n"
	        "      YAML configuration file. Env: STRATA_CONFIG.\n"
	        "  --help, -h\n"
	        "      Print this help and exit.\n"
	        "  --version\n"
	        "      Print the version and the git commit built from, and "
	        "exit.\n");
	for (size_t i = 0; i < n; i++) {
		const struct config_key *k = &schema[i];
		char env[ENV_NAME_SIZE];
		char flag[FLAG_NAME_SIZE];
		env_name(k->name, env);
		flag_name(k->name, flag);
		switch (k->type) {
		case CONFIG_BOOL:
			fprintf(out, "  %s[=BOOL]\n", flag);
			break;
		case CONFIG_SECTION:
			fprintf(out, "  %s.<key>=VALUE\n", flag);
			break;
		case CONFIG_ENUM:
			fprintf(out, "  %s=", flag);
			for (size_t j = 0; k->allowed[j] != NULL; j++) {
				fprintf(out, "%s%s", j > 0 ? "|" : "",
				        k->allowed[j]);
			}
			fprintf(out, "\n");
			break;
		default:
			fprintf(out, "  %s=%s\n", flag, type_meta(k->type));
			break;
		}
		fprintf(out, "      %s\n      ", k->help);
		if (k->flags & CONFIG_REQUIRED) {
			fprintf(out, "Required. ");
		} else if (k->def != NULL) {
			fprintf(out, "Default: %s. ", k->def);
		} else if (k->type != CONFIG_SECTION) {
			fprintf(out, "Default: unset. ");
		}
		if (k->min != NULL && k->max != NULL) {
			fprintf(out, "Range: %s..%s. ", k->min, k->max);
		} else if (k->min != NULL) {
			fprintf(out, "Minimum: %s. ", k->min);
		} else if (k->max != NULL) {
			fprintf(out, "Maximum: %s. ", k->max);
		}
		fprintf(out, "Env: %s%s.\n", env,
		        k->type == CONFIG_SECTION ? "_<KEY>" : "");
	}
}

/* One line of config_dump(). */
struct dump_entry {
	const char *name;   /* full dotted name */
	const char *value;  /* NULL: unset */
	const char *source; /* comment */
	bool quote;         /* print value as a YAML double-quoted string */
};

/* Order names component by component ('.' sorts before anything). */
static int dump_cmp(const void *pa, const void *pb)
{
	const unsigned char *a =
	        (const unsigned char *)((const struct dump_entry *)pa)->name;
	const unsigned char *b =
	        (const unsigned char *)((const struct dump_entry *)pb)->name;
	for (;; a++, b++) {
		int ca = *a == '.' ? 1 : *a == '\0' ? 0 : *a + 1;
		int cb = *b == '.' ? 1 : *b == '\0' ? 0 : *b + 1;
		if (ca != cb) {
			return ca - cb;
		}
		if (ca == 0) {
			return 0;
		}
	}
}

static bool secret_leaf(const char *name)
{
	static const char *const words[] = {"secret", "password", "token",
	                                    "credential"};
	for (size_t i = 0; i < sizeof(words) / sizeof(*words); i++) {
		if (strstr(name, words[i]) != NULL) {
			return true;
		}
	}
	return false;
}

static void print_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			fprintf(out, "\\%c", *p);
		} else if (*p == '\n') {
			fputs("\\n", out);
		} else if (*p == '\t') {
			fputs("\\t", out);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(out, "\\x%02x", *p);
		} else {
			fputc(*p, out);
		}
	}
	fputc('"', out);
}

/* Length of the first k components of name, '.' excluded. */
static size_t comp_prefix(const char *name, size_t k)
{
	size_t len = 0;
	for (size_t c = 0; c < k; c++) {
		len += strcspn(name + len, ".");
		if (c + 1 < k) {
			len++;
		}
	}
	return len;
}

int config_dump(const struct config *cfg, FILE *out)
{
	size_t n = cfg->n + cfg->n_leaves;
	struct dump_entry *e = strata_calloc(n > 0 ? n : 1, sizeof(*e));
	if (e == NULL) {
		return STRATA_ENOMEM;
	}
	size_t m = 0;
	for (size_t i = 0; i < cfg->n; i++) {
		const struct config_key *k = &cfg->schema[i];
		if (k->type == CONFIG_SECTION) {
			continue;
		}
		const struct config_value *v = &cfg->values[i];
		e[m].name = k->name;
		e[m].source = v->source != NULL ? v->source : "default";
		e[m].quote = k->type == CONFIG_STRING || k->type == CONFIG_ENUM;
		e[m].value = v->raw == NULL           ? NULL
		             : k->type == CONFIG_ENUM ? k->allowed[v->v.e]
		                                      : v->raw;
		if ((k->flags & CONFIG_SECRET) && v->raw != NULL) {
			e[m].value = "<redacted>";
			e[m].quote = true;
		}
		m++;
	}
	for (size_t i = 0; i < cfg->n_leaves; i++) {
		const struct config_leaf *l = &cfg->leaves[i];
		bool secret = (cfg->schema[l->section].flags & CONFIG_SECRET) ||
		              secret_leaf(l->name +
		                          strlen(cfg->schema[l->section].name));
		e[m].name = l->name;
		e[m].source = l->source;
		e[m].quote = true;
		e[m].value = secret ? "<redacted>" : l->raw;
		m++;
	}
	qsort(e, m, sizeof(*e), dump_cmp);
	fprintf(out, "# Effective configuration; each comment names where "
	             "the value comes from.\n");
	const char *prev = "";
	size_t prev_groups = 0;
	for (size_t i = 0; i < m; i++) {
		const char *name = e[i].name;
		size_t comps = 1;
		for (const char *p = name; *p; p++) {
			comps += *p == '.';
		}
		/* Groups shared with the previous line are already open. */
		size_t common = 0;
		while (common < prev_groups && common + 1 < comps) {
			size_t a = comp_prefix(prev, common + 1);
			size_t b = comp_prefix(name, common + 1);
			if (a != b || strncmp(prev, name, a) != 0) {
				break;
			}
			common++;
		}
		for (size_t c = common; c + 1 < comps; c++) {
			size_t start = c > 0 ? comp_prefix(name, c) + 1 : 0;
			size_t len = strcspn(name + start, ".");
			fprintf(out, "%*s%.*s:\n", (int)(2 * c), "", (int)len,
			        name + start);
		}
		const char *last = strrchr(name, '.');
		last = last != NULL ? last + 1 : name;
		int indent = (int)(2 * (comps - 1));
		if (e[i].value == NULL) {
			fprintf(out, "%*s# %s: (unset)\n", indent, "", last);
		} else {
			fprintf(out, "%*s%s: ", indent, "", last);
			if (e[i].quote) {
				print_quoted(out, e[i].value);
			} else {
				fputs(e[i].value, out);
			}
			fprintf(out, "  # %s\n", e[i].source);
		}
		prev = name;
		prev_groups = comps - 1;
	}
	strata_free(e);
	return 0;
}
