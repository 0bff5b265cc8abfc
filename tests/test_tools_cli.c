/*
 * test_tools_cli.c: bad input to every tool gives one clear line on stderr
 * and a non-zero exit, never a signal (table driven). Runs the built
 * programs in tools/ on a tiny generated dataset and checkpoint.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[64];

static int sh(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/lt_cli_XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        exit(1);
    }
    char cmd[4096];
    /* a dataset, a copy without masks, a checkpoint, a directory posing as a file */
    snprintf(cmd, sizeof cmd,
             "./tools/make_bg_challenge --out %s/bgc --size 16 --train-per-class 2 --val-per-class 1 --quiet "
             ">/dev/null 2>&1 && mkdir -p %s/nomask && cp -r %s/bgc/original %s/nomask/ && "
             "./tools/train_resnet18 --data %s/bgc --out %s/r18.safetensors --size 16 --batch 8 --epochs 1 "
             "--max-steps 1 --workers 0 >/dev/null 2>&1 && mkdir -p %s/adir.safetensors",
             root, root, root, root, root, root, root);
    if (sh(cmd) != 0) {
        fprintf(stderr, "test_tools_cli: setup failed: %s\n", cmd);
        exit(1);
    }
}

static void teardown(void)
{
    char cmd[600];
    if (strncmp(root, "/tmp/lt_cli_", 12) == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", root);
    }
}

typedef struct tool_case {
    const char *what;
    const char *args; /* %1$s is the temp root */
    const char *needle;
} tool_case;

/* "R" in args stands for the temp root. */
static const tool_case cases[] = {
    {"unknown flag", "./tools/train_resnet18 --data R/bgc --out R/o.safetensors --bogus", "unknown option"},
    {"missing value", "./tools/train_resnet18 --data R/bgc --out", "needs a value"},
    {"zero size", "./tools/train_resnet18 --data R/bgc --out R/o.safetensors --batch 0", "--batch"},
    {"negative size", "./tools/train_resnet18 --data R/bgc --out R/o.safetensors --size -64", "--size"},
    {"nonexistent data", "./tools/train_resnet18 --data R/none --out R/o.safetensors", "does not exist"},
    {"dataset without masks", "./tools/train_resnet18 --data R/nomask --out R/o.safetensors --method rrr", "mask"},
    {"rrda without masks", "./tools/train_resnet18 --data R/nomask --out R/o.safetensors --rrda", "mask"},
    {"unreadable resume file", "./tools/train_resnet18 --data R/bgc --out R/o.safetensors --size 16 --batch 8 "
                               "--resume R/adir.safetensors", "adir"},
    {"wrong-architecture checkpoint", "./tools/train_vit --data R/bgc --out R/o.safetensors --size 16 --batch 8 "
                                      "--dim 12 --depth 1 --resume R/r18.safetensors", "resnet18"},
    {"vit bad shape", "./tools/train_vit --data R/bgc --out R/o.safetensors --size 30 --patch 4", "divisible"},
    {"vit unknown flag", "./tools/train_vit --data R/bgc --out R/o.safetensors --stem small", "--stem"},
    {"eval unknown flag", "./tools/eval_bg_gap --data R/bgc --checkpoint R/r18.safetensors --bogus", "unknown option"},
    {"eval missing value", "./tools/eval_bg_gap --data R/bgc --checkpoint", "needs a value"},
    {"eval zero batch", "./tools/eval_bg_gap --data R/bgc --checkpoint R/r18.safetensors --batch 0", "--batch"},
    {"eval nonexistent data", "./tools/eval_bg_gap --data R/none --checkpoint R/r18.safetensors", "does not exist"},
    {"eval unreadable checkpoint", "./tools/eval_bg_gap --data R/bgc --checkpoint R/adir.safetensors", "adir"},
    {"eval missing checkpoint", "./tools/eval_bg_gap --data R/bgc --checkpoint R/none.safetensors", "none"},
    {"eval without masks", "./tools/eval_bg_gap --data R/nomask --checkpoint R/r18.safetensors --edges 10", "mask"},
    {"generator unknown flag", "./tools/make_bg_challenge --out R/g --bogus", "bogus"},
    {"generator zero size", "./tools/make_bg_challenge --out R/g --size 0", "size"},
    {"generator missing value", "./tools/make_bg_challenge --out", "out"},
    {"generator bad source", "./tools/make_bg_challenge --out R/g2 --source R/none", "none"},
};

static void expand(const char *in, char *out, size_t n)
{
    size_t k = 0;
    for (; *in && k + 1 < n; in++) {
        if (*in == 'R' && (in[1] == '/' || in[1] == ' ' || !in[1])) {
            k += (size_t)snprintf(out + k, n - k, "%s", root);
        } else {
            out[k++] = *in;
        }
    }
    out[k < n ? k : n - 1] = '\0';
}

START_TEST(bad_input_gives_one_line_and_a_nonzero_exit)
{
    char args[2048], cmd[2300], err[8192];
    expand(cases[_i].args, args, sizeof args);
    snprintf(cmd, sizeof cmd, "%s 2>&1 >/dev/null", args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t k = fread(err, 1, sizeof err - 1, p);
    err[k] = '\0';
    int st = pclose(p);
    ck_assert_msg(WIFEXITED(st), "%s: killed by a signal", cases[_i].what);
    ck_assert_msg(WEXITSTATUS(st) != 0, "%s: exit 0", cases[_i].what);
    int lines = 0;
    for (char *c = err; *c; c++)
        lines += *c == '\n';
    ck_assert_msg(lines == 1, "%s: %d lines on stderr:\n%s", cases[_i].what, lines, err);
    ck_assert_msg(strstr(err, cases[_i].needle) != NULL, "%s: message lacks \"%s\": %s", cases[_i].what,
                  cases[_i].needle, err);
}
END_TEST

START_TEST(every_tool_has_help_and_version)
{
    static const char *tools[] = {"make_bg_challenge", "train_resnet18", "train_vit", "eval_bg_gap"};
    char cmd[256];
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++) {
        snprintf(cmd, sizeof cmd, "./tools/%s --help | grep -q -- '--'", tools[i]);
        ck_assert_msg(sh(cmd) == 0, "%s --help", tools[i]);
        snprintf(cmd, sizeof cmd, "./tools/%s --version | grep -q '[0-9]\\.[0-9]'", tools[i]);
        ck_assert_msg(sh(cmd) == 0, "%s --version", tools[i]);
    }
}
END_TEST

int main(void)
{
    setup();
    Suite *s = suite_create("tools_cli");
    TCase *tc = tcase_create("bad_input");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, bad_input_gives_one_line_and_a_nonzero_exit, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, every_tool_has_help_and_version);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    teardown();
    return failed ? 1 : 0;
}
