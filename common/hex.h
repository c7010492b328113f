/* The value of one hexadecimal digit (percent-escapes, JSON \u escapes,
 * hex command-line input). Header-only, so plugins use it too. */
#ifndef COMMON_HEX_H
#define COMMON_HEX_H

/* 0..15 for [0-9a-fA-F], -1 for any other character. */
static inline int hex_value(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

#endif /* COMMON_HEX_H */
