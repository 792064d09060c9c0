/* kg_cli_audit.c - kmipgw audit verify FILE: check the audit log's hash
 * chain (kg_audit.h). Problems and the summary go to stdout; the exit status
 * is 0 when the chain is intact, 1 when it is broken, 2 on a usage error or
 * when the file cannot be read. */
#include <stdio.h>

#include "kg_audit.h"
#include "kg_cli.h"

int kg_cli_audit_verify(int argc, char **argv)
{
    size_t records = 0, problems = 0;

    if (argc != 2 || argv[1][0] == '\0') {
        fprintf(stderr, "usage: kmipgw audit verify FILE\n");
        return 2;
    }
    if (kg_failed(kg_audit_verify_file(argv[1], stdout, &records, &problems))) {
        fprintf(stderr, "kmipgw: audit verify: %s\n", kg_error_text()[0] ? kg_error_text() : kg_error_name(kg_errno()));
        return 2;
    }
    if (fflush(stdout) != 0) {
        return 2;
    }
    return problems == 0 ? 0 : 1;
}
