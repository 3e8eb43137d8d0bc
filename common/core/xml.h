/* Minimal XML for service responses (S3 and Azure list and error bodies) and
 * the few request bodies we build (S3 DeleteObjects, CompleteMultipartUpload).
 *
 * Not a parser: no DTD, no validation; tag names are matched literally
 * (namespace prefixes included, case-sensitively) by scanning [xml, end), which
 * need not be NUL-terminated. Tags with attributes (<Name attr="x">) and empty
 * elements (<Name/>) match too. Pure functions, in core beside the other
 * codecs. */
#ifndef UW_XML_H
#define UW_XML_H

#include <stdbool.h>

/* The first <tag>...</tag> (or <tag/>) in [xml, end): its content with entities
 * (&amp; &lt; &gt; &quot; &apos; &#N; &#xN;) and CDATA sections decoded,
 * malloc'd; *after (if not NULL) is set just past the closing tag so a caller
 * can iterate over repeated elements. NULL when absent. */
char *uw_xml_get(const char *xml, const char *end, const char *tag, const char **after);
/* Like uw_xml_get but returns the raw element body [*body, *body_end) without
 * copying or decoding (for nested elements such as <Contents>...</Contents>).
 * Returns false when absent. */
bool uw_xml_find(const char *xml, const char *end, const char *tag, const char **body,
                 const char **body_end, const char **after);
/* Escape &, <, >, ", ' for XML text/attributes. Caller frees. */
char *uw_xml_escape(const char *s);

#endif
