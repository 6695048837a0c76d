// PLACEHOLDER: being written by the image helper.
#include "io/image.h"
