/* Error codes are defined once (UW_ERROR_CODES in core/error.h): the enum,
 * uw_code_name() and uw_code_meaning() come from that table, and README.md's
 * exit-code table must list exactly its codes, with the same numbers, names
 * and meanings (the README's Markdown backquotes aside). The README is found
 * through UW_SRC_DIR (a compile definition) or argv[1]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "unit.h"

typedef struct {
    int num;
    const char *name, *meaning;
} code_row;

static const code_row table[] = {
#define ROW(sym, num, name, meaning) {num, name, meaning},
    UW_ERROR_CODES(ROW)
#undef ROW
};
#define NCODES (sizeof table / sizeof table[0])

static void test_table(void)
{
    uw_t_section("the table: unique, ascending, named");
    for (size_t i = 0; i < NCODES; i++) {
        CHECK_STR(uw_code_name((uw_code)table[i].num), table[i].name);
        CHECK_STR(uw_code_meaning((uw_code)table[i].num), table[i].meaning);
        CHECK(table[i].name[0] != '\0' && table[i].meaning[0] != '\0');
        if (i > 0)
            CHECKF(table[i].num > table[i - 1].num, "%d after %d", table[i].num, table[i - 1].num);
        for (size_t j = 0; j < i; j++)
            CHECKF(strcmp(table[i].name, table[j].name) != 0, "name '%s' twice", table[i].name);
    }
    /* the contract's fixed points */
    CHECK_INT(UW_OK, 0);
    CHECK_INT(UW_E_NOT_FOUND, 1);
    CHECK_INT(UW_E_STORAGE_DENIED, 17);
    CHECK_INT(UW_E_CORRUPT, 150);
    CHECK_INT(UW_E_FORMAT_VERSION, 153);
    CHECK_STR(uw_code_name((uw_code)99), "unknown");
    CHECK(uw_code_meaning((uw_code)99) == NULL);
}

/* Trim blanks at both ends of [s, e) and drop Markdown backquotes. */
static char *cell(const char *s, const char *e)
{
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    char *out = uw_malloc((size_t)(e - s) + 1), *o = out;
    for (; s < e; s++)
        if (*s != '`')
            *o++ = *s;
    *o = '\0';
    return out;
}

/* Split "| a | b | c |" into exactly three cells; false otherwise. */
static bool split_row(const char *line, char *cells[3])
{
    const char *p = line;
    if (*p != '|')
        return false;
    for (int k = 0; k < 3; k++) {
        const char *q = strchr(p + 1, '|');
        if (!q)
            return false;
        cells[k] = cell(p + 1, q);
        p = q;
    }
    return strspn(p + 1, " \t\r\n") == strlen(p + 1);
}

static void free_cells(char *cells[3])
{
    for (int k = 0; k < 3; k++)
        free(cells[k]);
}

static void test_readme(const char *src_dir)
{
    uw_t_section("README.md's exit-code table matches");
    char *path = uw_sprintf("%s/README.md", src_dir);
    FILE *f = fopen(path, "r");
    if (!CHECKF(f != NULL, "cannot open '%s'", path)) {
        free(path);
        return;
    }
    char line[1024];
    bool in_section = false, in_table = false;
    size_t row = 0;
    int header_lines = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "## ", 3) == 0) {
            if (in_section)
                break;
            in_section = strcmp(line, "## Exit codes\n") == 0;
            continue;
        }
        if (!in_section)
            continue;
        if (line[0] != '|') {
            if (in_table)
                break; /* the table ended */
            continue;
        }
        in_table = true;
        if (header_lines < 2) { /* "| code | name | meaning |" and "| --- |..." */
            header_lines++;
            continue;
        }
        char *c[3] = {NULL, NULL, NULL};
        if (!CHECKF(split_row(line, c), "not a three-column row: %s", line)) {
            free_cells(c);
            continue;
        }
        char *end;
        long num = strtol(c[0], &end, 10);
        bool numeric = *c[0] && *end == '\0';
        if (CHECKF(row < NCODES, "README lists code %s beyond the %zu of the table", c[0],
                   NCODES) &&
            CHECKF(numeric, "code '%s' is not a number", c[0])) {
            CHECKF(num == table[row].num, "README row %zu is code %ld, the table's is %d", row + 1,
                   num, table[row].num);
            CHECKF(strcmp(c[1], table[row].name) == 0, "code %ld: README '%s', table '%s'", num,
                   c[1], table[row].name);
            CHECKF(strcmp(c[2], table[row].meaning) == 0, "code %ld: README '%s', table '%s'", num,
                   c[2], table[row].meaning);
        }
        row++;
        free_cells(c);
    }
    fclose(f);
    CHECKF(in_table, "no table under '## Exit codes' in '%s'", path);
    CHECKF(row == NCODES, "README lists %zu codes, the table %zu", row, NCODES);
    free(path);
}

int main(int argc, char **argv)
{
    test_table();
    test_readme(argc > 1 ? argv[1] : UW_SRC_DIR);
    return uw_t_done("test_error");
}
