#pragma once
#include <cblas.h>
// Declared by OpenBLAS's cblas.h on Debian; repeated here so that the Swift side sees
// them whatever the header version.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_config(void);
char *openblas_get_corename(void);
