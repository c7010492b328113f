/* Symbol visibility: everything is hidden unless marked STRATA_API. */
#ifndef STRATA_EXPORT_H
#define STRATA_EXPORT_H

#define STRATA_API __attribute__((visibility("default")))

#endif /* STRATA_EXPORT_H */
