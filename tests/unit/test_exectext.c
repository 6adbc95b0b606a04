/* test_exectext.c - the text helpers of serve's exec: where a stream
 * may be cut without splitting a UTF-8 sequence, UTF-8 validation, JSON
 * strings with bad bytes as U+FFFD (and NUL as \u0000), base64. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "serve/exec.h"
#include "tap.h"

static const char *json(const char *s, size_t n, bool *bad)
{
	static struct xbuf b;
	b.len = 0;
	*bad = false;
	xbuf_json_str(&b, (const unsigned char *)s, n, bad);
	return b.data;
}

static const char *b64(const char *s, size_t n)
{
	static struct xbuf b;
	b.len = 0;
	xbuf_b64(&b, (const unsigned char *)s, n);
	return b.data;
}

int main(void)
{
	const unsigned char euro[] = { 0xe2, 0x82, 0xac };
	TAP_OK(utf8_complete_prefix((const unsigned char *)"ab", 2) == 2, "ASCII is complete");
	TAP_OK(utf8_complete_prefix(euro, 1) == 0 && utf8_complete_prefix(euro, 2) == 0 &&
	       utf8_complete_prefix(euro, 3) == 3, "a three-byte sequence waits until whole");
	const unsigned char mixed[] = { 'a', 0xf0, 0x9f, 0x98 };
	TAP_OK(utf8_complete_prefix(mixed, 4) == 1, "a cut four-byte sequence is held back");
	const unsigned char badc[] = { 'a', 0xff, 0xc3 };
	TAP_OK(utf8_complete_prefix(badc, 3) == 2, "a bad byte is not held, the start after it is");
	TAP_OK(utf8_valid(euro, 3) && !utf8_valid(euro, 2), "valid / cut");
	const unsigned char sur[] = { 0xed, 0xa0, 0x80 }, over[] = { 0xc0, 0xaf };
	TAP_OK(!utf8_valid(sur, 3) && !utf8_valid(over, 2), "surrogates and overlong forms are invalid");

	bool bad;
	TAP_STREQ(json("a\"b\\\n\t\x01", 7, &bad), "\"a\\\"b\\\\\\n\\t\\u0001\"", "escapes");
	TAP_OK(!bad, "no bad bytes in plain text");
	TAP_STREQ(json("x\0y", 3, &bad), "\"x\\u0000y\"", "a NUL byte is kept as \\u0000");
	TAP_STREQ(json("a\xff" "b", 3, &bad), "\"a\xef\xbf\xbd" "b\"", "a bad byte is U+FFFD");
	TAP_OK(bad, "and is reported");
	TAP_STREQ(json("\xe2\x82", 2, &bad), "\"\xef\xbf\xbd\xef\xbf\xbd\"", "a cut sequence too");

	TAP_STREQ(b64("", 0), "\"\"", "base64 of nothing");
	TAP_STREQ(b64("f", 1), "\"Zg==\"", "base64, one byte");
	TAP_STREQ(b64("fo", 2), "\"Zm8=\"", "base64, two bytes");
	TAP_STREQ(b64("foobar", 6), "\"Zm9vYmFy\"", "base64, six bytes");
	TAP_STREQ(b64("\xff\x00\x80", 3), "\"/wCA\"", "base64 of binary");
	return tap_done();
}
