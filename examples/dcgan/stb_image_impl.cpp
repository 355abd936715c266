// stb_image's implementation (the tests decode the PNGs that dcgan/images.cpp writes),
// compiled from Debian's libstb-dev header like stb_image_write_impl.cpp. Nothing in the
// qgan tool calls it, so the static library's linking leaves it out of the tool.
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
