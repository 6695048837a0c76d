// PLACEHOLDER: being written by the ingest helper.
#include "curate/ingest.h"
