/*
 * tool_fs.h: file-system helpers shared by the tools (not library API).
 */
#ifndef LIBTENSOR_TOOLS_FS_H
#define LIBTENSOR_TOOLS_FS_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>

static inline bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* mkdir -p: 0, or -1 with errno (ENOTDIR when a component is a file). */
static inline int make_dirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0777) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    if (mkdir(buf, 0777) < 0 && errno != EEXIST)
        return -1;
    return is_dir(buf) ? 0 : (errno = ENOTDIR, -1);
}

#endif
