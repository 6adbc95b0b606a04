/* temporary stubs so the tree builds while modules are written; each
 * module's owner deletes its part of this file */
#include <stdio.h>
#include "cli.h"
#include "delta.h"
#include "policy.h"
#include "sandbox.h"
#include "view.h"



/* STUB-VIEW-BEGIN */
int view_new(const struct view_config *cfg AF_UNUSED, struct view **out AF_UNUSED, struct af_err *err) { return af_err_set(err, ENOSYS, "not implemented"); }
int view_start(struct view *v AF_UNUSED, int fuse_fd AF_UNUSED, struct af_err *err) { return af_err_set(err, ENOSYS, "not implemented"); }
void view_stop(struct view *v AF_UNUSED) {}
void view_free(struct view *v AF_UNUSED) {}
/* STUB-VIEW-END */

/* STUB-SANDBOX-BEGIN */
int sandbox_start(const struct sandbox_config *cfg AF_UNUSED, struct sandbox **out AF_UNUSED, int *fuse_fd AF_UNUSED, struct af_err *err) { return af_err_set(err, ENOSYS, "not implemented"); }
int sandbox_exec(struct sandbox *sb AF_UNUSED, struct af_err *err) { return af_err_set(err, ENOSYS, "not implemented"); }
int sandbox_wait(struct sandbox *sb AF_UNUSED, double timeout AF_UNUSED, struct sandbox_result *res AF_UNUSED, struct af_err *err) { return af_err_set(err, ENOSYS, "not implemented"); }
void sandbox_kill(struct sandbox *sb AF_UNUSED) {}
void sandbox_free(struct sandbox *sb AF_UNUSED) {}
int cmd_run(int argc AF_UNUSED, char **argv AF_UNUSED) { return 125; }
/* STUB-SANDBOX-END */
