/* tap.h - a tiny TAP producer for the C unit tests.
 *
 * Each check prints "ok N - name" or "not ok N - name"; tap_done()
 * prints the plan and returns the exit status (1 if anything failed). */
#ifndef AF_TAP_H
#define AF_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

#define TAP_OK(cond, ...)                                                        \
	do {                                                                     \
		int tap_c_ = !!(cond);                                           \
		printf("%sok %d - ", tap_c_ ? "" : "not ", ++tap_n);             \
		printf(__VA_ARGS__);                                             \
		printf("\n");                                                    \
		if (!tap_c_) {                                                   \
			tap_failed++;                                            \
			printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                \
	} while (0)

#define TAP_STREQ(a, b, ...)                                                     \
	do {                                                                     \
		const char *tap_a_ = (a), *tap_b_ = (b);                         \
		int tap_eq_ = tap_a_ && tap_b_ && strcmp(tap_a_, tap_b_) == 0;    \
		TAP_OK(tap_eq_, __VA_ARGS__);                                     \
		if (!tap_eq_)                                                    \
			printf("#   got '%s', expected '%s'\n", tap_a_ ? tap_a_ : "(null)", \
			       tap_b_ ? tap_b_ : "(null)");                      \
	} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
