/* preset_data.h - the built-in presets, generated from the .ini files in presets/. */
#ifndef AF_PRESET_DATA_H
#define AF_PRESET_DATA_H

struct builtin_preset {
	const char *name;
	const char *ini; /* the INI text of presets/NAME.ini */
};

/* Terminated by an entry with name == NULL. */
extern const struct builtin_preset builtin_presets[];

#endif
