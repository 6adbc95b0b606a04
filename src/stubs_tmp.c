/* temporary stubs so the tree builds while modules are written; each
 * module's owner deletes its part of this file */
#include <stdio.h>
#include "cli.h"
#include "delta.h"
#include "policy.h"
#include "sandbox.h"
#include "view.h"

/* STUB-POLICY-BEGIN */
struct policy { int x; };
struct policy *policy_new(void) { return xcalloc(1, sizeof(struct policy)); }
void policy_free(struct policy *p) { free(p); }
int policy_add(struct policy *p AF_UNUSED, const char *pattern AF_UNUSED, enum level level AF_UNUSED, int priority AF_UNUSED, const char *origin AF_UNUSED, struct af_err *err) { return af_err_set(err, ENOSYS, "not implemented"); }
int policy_add_spec(struct policy *p AF_UNUSED, const char *spec AF_UNUSED, const char *origin AF_UNUSED, struct af_err *err) { return af_err_set(err, ENOSYS, "not implemented"); }
int policy_add_preset(struct policy *p AF_UNUSED, const char *name AF_UNUSED, struct af_err *err) { return af_err_set(err, ENOSYS, "not implemented"); }
int policy_add_file(struct policy *p AF_UNUSED, const char *path AF_UNUSED, struct af_err *err) { return af_err_set(err, ENOSYS, "not implemented"); }
int policy_finalize(struct policy *p AF_UNUSED) { return 0; }
void policy_decide(const struct policy *p AF_UNUSED, const char *path AF_UNUSED, bool is_dir AF_UNUSED, struct decision *out) { out->level = LEVEL_READ; out->traversable = false; out->rule = NULL; }
const char *level_name(enum level l) { static const char *n[] = { "none", "view", "read", "write" }; return n[l]; }
int cmd_preset(int argc AF_UNUSED, char **argv AF_UNUSED) { return 125; }
int cmd_explain(int argc AF_UNUSED, char **argv AF_UNUSED) { return 125; }
void policy_options_add(struct policy_options *po AF_UNUSED, int kind AF_UNUSED, const char *arg AF_UNUSED) {}
struct policy *policy_options_build(const struct policy_options *po AF_UNUSED) { return policy_new(); }
void policy_options_free(struct policy_options *po AF_UNUSED) {}
/* STUB-POLICY-END */

/* STUB-DELTA-BEGIN */
char *delta_state_dir(struct af_err *err) { af_err_set(err, ENOSYS, "not implemented"); return NULL; }
int delta_create(const char *state_dir AF_UNUSED, const char *project_path AF_UNUSED, struct delta **out AF_UNUSED, struct af_err *err) { return af_err_set(err, ENOSYS, "not implemented"); }
void delta_free(struct delta *d AF_UNUSED) {}
const char *delta_path(const struct delta *d AF_UNUSED) { return ""; }
int delta_upper_fd(const struct delta *d AF_UNUSED) { return -1; }
int delta_work_fd(const struct delta *d AF_UNUSED) { return -1; }
void delta_note_base(struct delta *d AF_UNUSED, const char *path AF_UNUSED, const struct stat *st AF_UNUSED) {}
bool delta_get_base(const struct delta *d AF_UNUSED, const char *path AF_UNUSED, struct delta_base *out AF_UNUSED) { return false; }
int delta_save(struct delta *d AF_UNUSED, struct af_err *err) { return af_err_set(err, ENOSYS, "not implemented"); }
int delta_remove(struct delta *d AF_UNUSED, struct af_err *err) { return af_err_set(err, ENOSYS, "not implemented"); }
int delta_sync(struct delta *d AF_UNUSED, int project_fd AF_UNUSED, struct sync_report *rep AF_UNUSED, struct af_err *err) { return af_err_set(err, ENOSYS, "not implemented"); }
/* STUB-DELTA-END */

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
