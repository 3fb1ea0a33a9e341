#include "utf8.h"

size_t utf8_next(const char *s, bool *ok)
{
	const unsigned char *p = (const unsigned char *) s;
	/* The range of the byte after the lead: Unicode's table 3-7 narrows
	 * it to exclude overlong forms (E0, F0), surrogates (ED) and code
	 * points past U+10FFFF (F4). */
	unsigned char lo = 0x80, hi = 0xBF;
	size_t more;

	*ok = p[0] < 0x80;
	if (*ok)
		return 1;
	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		more = 1;
	else if (p[0] >= 0xE0 && p[0] <= 0xEF)
		more = 2;
	else if (p[0] >= 0xF0 && p[0] <= 0xF4)
		more = 3;
	else
		return 1;
	if (p[0] == 0xE0)
		lo = 0xA0;
	else if (p[0] == 0xED)
		hi = 0x9F;
	else if (p[0] == 0xF0)
		lo = 0x90;
	else if (p[0] == 0xF4)
		hi = 0x8F;
	/* A NUL is out of every range, so the loop stops at the end. */
	for (size_t i = 1; i <= more; i++, lo = 0x80, hi = 0xBF)
		if (p[i] < lo || p[i] > hi)
			return i;
	*ok = true;
	return more + 1;
}

bool utf8_valid(const char *s)
{
	bool ok = true;

	while (ok && *s)
		s += utf8_next(s, &ok);
	return ok;
}
