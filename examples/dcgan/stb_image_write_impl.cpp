// stb_image_write's implementation (PNG encoding for dcgan/images.cpp), compiled from
// Debian's libstb-dev header instead of linked from libstb, which exists for the host
// architecture only. Built without qgan's warnings (examples/CMakeLists.txt).
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
