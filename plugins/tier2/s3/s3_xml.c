/* The few S3 XML answers the SigV4 transport reads, parsed with libxml2. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "plugins/tier2/s3/s3_xml.h"

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init_once(void)
{
	xmlInitParser();
}

void s3_xml_init(void)
{
	pthread_once(&xml_once, xml_init_once);
}

static xmlDocPtr parse(const char *body, size_t len)
{
	if (body == NULL || len == 0 || len > INT_MAX) {
		return NULL;
	}
	s3_xml_init();
	return xmlReadMemory(body, (int)len, "s3.xml", NULL,
	                     XML_PARSE_NONET | XML_PARSE_NOERROR |
	                             XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
}

static bool is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE &&
	       strcmp((const char *)n->name, name) == 0;
}

/* First element called name at or below n, depth first. */
static xmlNodePtr find(xmlNodePtr n, const char *name)
{
	for (; n != NULL; n = n->next) {
		if (is(n, name)) {
			return n;
		}
		xmlNodePtr c = find(n->children, name);
		if (c != NULL) {
			return c;
		}
	}
	return NULL;
}

/* Copy n's text into out (truncated); "" for NULL. */
static void copy_text(xmlNodePtr n, char *out, size_t size)
{
	if (size == 0) {
		return;
	}
	out[0] = '\0';
	if (n == NULL) {
		return;
	}
	xmlChar *t = xmlNodeGetContent(n);
	if (t != NULL) {
		snprintf(out, size, "%s", (const char *)t);
		xmlFree(t);
	}
}

int s3_xml_text(const char *body, size_t len, const char *name, char *out,
                size_t size)
{
	xmlDocPtr doc = parse(body, len);
	if (doc == NULL) {
		return STRATA_EPROTO;
	}
	xmlNodePtr n = find(xmlDocGetRootElement(doc), name);
	copy_text(n, out, size);
	xmlFreeDoc(doc);
	return n != NULL ? 0 : STRATA_ENOENT;
}

bool s3_xml_error(const char *body, size_t len, char *code, size_t code_size,
                  char *msg, size_t msg_size)
{
	xmlDocPtr doc = parse(body, len);
	if (doc == NULL) {
		return false;
	}
	xmlNodePtr root = xmlDocGetRootElement(doc);
	bool err = root != NULL && is(root, "Error");
	if (err) {
		copy_text(find(root->children, "Code"), code, code_size);
		copy_text(find(root->children, "Message"), msg, msg_size);
	}
	xmlFreeDoc(doc);
	return err;
}

int64_t s3_xml_time(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	int frac_len = 0;
	unsigned frac = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
	           &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6) {
		return 0;
	}
	const char *dot = strchr(s, '.');
	if (dot != NULL) {
		for (const char *p = dot + 1; *p >= '0' && *p <= '9'; p++) {
			if (frac_len < 9) {
				frac = frac * 10 + (unsigned)(*p - '0');
				frac_len++;
			}
		}
		while (frac_len < 9) {
			frac *= 10;
			frac_len++;
		}
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	/* 0 (unknown) before 1970 and past 2262, where ns overflow int64. */
	if (t == (time_t)-1 || t < 0 ||
	    (int64_t)t > (INT64_MAX - 999999999) / 1000000000) {
		return 0;
	}
	return (int64_t)t * 1000000000 + (int64_t)frac;
}

/* The entries of one page while it is handed to the callback. */
struct page {
	struct s3_object *objs; /* host-allocated array */
	xmlChar **keys;         /* owned by libxml2's allocator */
	size_t n;
};

static void page_free(const struct strata_host *host, struct page *p)
{
	for (size_t i = 0; i < p->n; i++) {
		xmlFree(p->keys[i]);
	}
	host->free(p->objs);
	host->free(p->keys);
}

int s3_xml_list(const struct strata_host *host, const char *body, size_t len,
                s3_list_page_cb cb, void *arg, bool *truncated, int *cb_rc)
{
	*cb_rc = 0;
	*truncated = false;
	xmlDocPtr doc = parse(body, len);
	if (doc == NULL) {
		return STRATA_EPROTO;
	}
	xmlNodePtr root = xmlDocGetRootElement(doc);
	if (root == NULL || !is(root, "ListBucketResult")) {
		xmlFreeDoc(doc);
		return STRATA_EPROTO;
	}
	size_t cap = 0;
	for (xmlNodePtr c = root->children; c != NULL; c = c->next) {
		cap += is(c, "Contents");
	}
	struct page p = {0};
	int rc = 0;
	p.objs = host->malloc((cap + 1) * sizeof(*p.objs));
	p.keys = host->malloc((cap + 1) * sizeof(*p.keys));
	if (p.objs == NULL || p.keys == NULL) {
		rc = STRATA_ENOMEM;
		goto out;
	}
	for (xmlNodePtr c = root->children; c != NULL; c = c->next) {
		if (is(c, "IsTruncated")) {
			char t[8];
			copy_text(c, t, sizeof(t));
			*truncated = strcmp(t, "true") == 0;
			continue;
		}
		if (!is(c, "Contents")) {
			continue;
		}
		xmlNodePtr k = find(c->children, "Key");
		xmlNodePtr sz = find(c->children, "Size");
		if (k == NULL || sz == NULL) {
			rc = STRATA_EPROTO;
			goto out;
		}
		char num[32];
		char when[64];
		copy_text(sz, num, sizeof(num));
		copy_text(find(c->children, "LastModified"), when,
		          sizeof(when));
		char *end = NULL;
		unsigned long long size = strtoull(num, &end, 10);
		if (num[0] < '0' || num[0] > '9' || *end != '\0') {
			rc = STRATA_EPROTO;
			goto out;
		}
		p.keys[p.n] = xmlNodeGetContent(k);
		if (p.keys[p.n] == NULL) {
			rc = STRATA_ENOMEM;
			goto out;
		}
		p.objs[p.n] = (struct s3_object){
		        .key = (const char *)p.keys[p.n],
		        .size = size,
		        .mtime_ns = s3_xml_time(when),
		};
		p.n++;
	}
	*cb_rc = cb(arg, p.objs, p.n);
out:
	page_free(host, &p);
	xmlFreeDoc(doc);
	return rc;
}
