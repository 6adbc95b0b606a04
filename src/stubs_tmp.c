/* temporary stubs so the tree builds while modules are written; each
 * module's owner deletes its part of this file */
#include <stdio.h>
#include "cli.h"
#include "delta.h"
#include "policy.h"
#include "sandbox.h"
#include "view.h"

