/* libFuzzer target: the PROXY protocol parser on arbitrary bytes. */
#include "auto-config.h"

#include "proxyproto.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxyproto_info info;
	const char *why = NULL;
	int n = proxyproto_parse(data, size, &info, &why);

	/* A header never claims more bytes than it was given, nor more than the limit. */
	if (n > 0 && ((size_t)n > size || n > PROXYPROTO_MAX))
		__builtin_trap();
	if (n < 0 && (!why || !*why))
		__builtin_trap();
	return 0;
}
