#include "lsn.h"

#include <inttypes.h>
#include <stdio.h>

bool lsn_parse(const char *s, lsn_t *out)
{
	unsigned int hi, lo;
	int consumed = 0;

	if (s == NULL || sscanf(s, "%X/%X%n", &hi, &lo, &consumed) != 2 || s[consumed] != '\0')
		return false;
	*out = ((lsn_t) hi << 32) | lo;
	return true;
}

char *lsn_format(lsn_t lsn, char buf[LSN_BUFLEN])
{
	snprintf(buf, LSN_BUFLEN, "%" PRIX32 "/%" PRIX32, (uint32_t) (lsn >> 32), (uint32_t) lsn);
	return buf;
}
