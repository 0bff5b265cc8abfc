/* autograd_internal.h: shared by the files of autograd/ only. */
#ifndef LIBTENSOR_AUTOGRAD_INTERNAL_H
#define LIBTENSOR_AUTOGRAD_INTERNAL_H

#include "../tensor/tensor_internal.h"
#include "autograd.h"

#include <stdio.h>

#define LT_AG_MAXIARGS 24
#define LT_AG_MAXDARGS 4
#define LT_AG_MAXIN 256

typedef struct lt_ag_node lt_ag_node;

/* formulas.c: the observer installed into tensor/ and the built-in table. */
int lt__ag_observer(const lt_opcall *call);
const lt_ag_fn *lt__ag_builtin_fn(lt_op op);

#endif
