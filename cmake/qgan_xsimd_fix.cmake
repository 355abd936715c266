# Debian 12's xsimd 8.1 package exports its target as plain `xsimd` with a link dependency
# on `xtl`, a library Debian does not ship (every link fails with "cannot find -lxtl").
# xsimd is header-only and uses nothing from xtl, so drop the dependency when no real
# `xtl` target exists. Used by qgan's own build and by the installed qganConfig.cmake.
macro(qgan_fix_xsimd_target)
  if(TARGET xsimd AND NOT TARGET xtl)
    get_target_property(_qgan_xsimd_links xsimd INTERFACE_LINK_LIBRARIES)
    if(_qgan_xsimd_links)
      list(REMOVE_ITEM _qgan_xsimd_links xtl)
      set_target_properties(xsimd PROPERTIES INTERFACE_LINK_LIBRARIES "${_qgan_xsimd_links}")
    endif()
    unset(_qgan_xsimd_links)
  endif()
endmacro()
