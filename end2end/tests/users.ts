/** The demo users of end2end/provider.toml: one per journey that counts figures per user. */
export const USERS = {
  alice: { username: 'alice', password: 'wonderland', sub: '248289761001', name: 'Alice Liddell' },
  bob: { username: 'bob', password: 'builder', sub: '248289761002', name: 'Bob the Builder' },
  carol: { username: 'carol', password: 'typist', sub: '248289761003', name: 'Carol Typist' },
  dave: { username: 'dave', password: 'twotabs', sub: '248289761004', name: 'Dave Twotabs' },
  erin: { username: 'erin', password: 'replayed', sub: '248289761005', name: 'Erin Replayed' },
  frank: { username: 'frank', password: 'frozen', sub: '248289761006', name: 'Frank Frozen' },
  grace: { username: 'grace', password: 'reloaded', sub: '248289761007', name: 'Grace Reloaded' },
  heidi: { username: 'heidi', password: 'leaving', sub: '248289761008', name: 'Heidi Leaving' },
  ivan: { username: 'ivan', password: 'another', sub: '248289761009', name: 'Ivan Another' },
  judy: { username: 'judy', password: 'offline', sub: '248289761010', name: 'Judy Offline' },
  kate: { username: 'kate', password: 'visible', sub: '248289761011', name: 'Kate Visible' },
  liam: { username: 'liam', password: 'asleep', sub: '248289761012', name: 'Liam Asleep' },
  mia: { username: 'mia', password: 'nolocks', sub: '248289761013', name: 'Mia Nolocks' },
  nina: { username: 'nina', password: 'fallback', sub: '248289761014', name: 'Nina Fallback' },
  olga: { username: 'olga', password: 'twotabs2', sub: '248289761015', name: 'Olga Signout' },
  pete: { username: 'pete', password: 'checked', sub: '248289761016', name: 'Pete Checked' },
  quinn: { username: 'quinn', password: 'rekeyed', sub: '248289761017', name: 'Quinn Rekeyed' },
  rosa: { username: 'rosa', password: 'backchannel', sub: '248289761018', name: 'Rosa Backchannel' },
  sam: { username: 'sam', password: 'dashboard', sub: '248289761019', name: 'Sam Dashboard' },
  tom: { username: 'tom', password: 'latecomer', sub: '248289761020', name: 'Tom Latecomer' },
  una: { username: 'una', password: 'reopened', sub: '248289761021', name: 'Una Reopened' },
  vera: { username: 'vera', password: 'termsagain', sub: '248289761022', name: 'Vera Terms' },
  walt: { username: 'walt', password: 'handover', sub: '248289761023', name: 'Walt Handover' },
} as const;

/** The demo users of end2end/provider-faults.toml (the fault panel's app, :3600): one per journey. */
export const FAULT_USERS = {
  ada: { username: 'ada', password: 'lovelace', sub: '248289762001', name: 'Ada Tourist' },
  tina: { username: 'tina', password: 'expired', sub: '248289762002', name: 'Tina Expired' },
  uma: { username: 'uma', password: 'slowly', sub: '248289762003', name: 'Uma Slowly' },
  victor: { username: 'victor', password: 'outage', sub: '248289762004', name: 'Victor Outage' },
  wendy: { username: 'wendy', password: 'lostreply', sub: '248289762005', name: 'Wendy Lost' },
  xavier: { username: 'xavier', password: 'replayer', sub: '248289762006', name: 'Xavier Replayed' },
  yara: { username: 'yara', password: 'provider', sub: '248289762007', name: 'Yara Elsewhere' },
  zoe: { username: 'zoe', password: 'backchannel', sub: '248289762008', name: 'Zoe Backchannel' },
  bea: { username: 'bea', password: 'unanswered', sub: '248289762009', name: 'Bea Unanswered' },
} as const;

export type User = (typeof USERS)[keyof typeof USERS];
