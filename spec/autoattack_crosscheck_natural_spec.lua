-- AutoAttack against torchattacks 3.5.1 on the naturally trained CNN001 of
-- helpers/aa_fixture.lua: what is checked, the sizes and the environment
-- variables are in helpers/aa_crosscheck.lua.
require('helpers.aa_crosscheck')('natural', _ENV)
