/*
 * tap: a minimal Test Anything Protocol emitter for the C unit tests.
 * ok() prints one "ok N - name" line; tap_done() prints the plan and
 * returns the exit status.
 */
#ifndef LTCP_TAP_H
#define LTCP_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int tap_n, tap_failed;

#define TAP_UNUSED __attribute__((unused))

TAP_UNUSED __attribute__((format(printf, 2, 3))) static int ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		tap_failed++;
	fflush(stdout);
	return cond;
}

TAP_UNUSED __attribute__((format(printf, 1, 2))) static void diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
