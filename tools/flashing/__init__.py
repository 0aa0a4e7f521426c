"""The technician's flashing kit: esptool image writing, mpremote deploy, provisioning, batch."""
