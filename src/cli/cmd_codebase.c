/* cmd_codebase.c - agentfense codebase ... (placeholder until the client lands) */
#include "cli.h"
#include "util.h"

int cmd_codebase(int argc AF_UNUSED, char **argv AF_UNUSED)
{
	die(AF_EXIT_USAGE, "codebase: not available yet");
}
