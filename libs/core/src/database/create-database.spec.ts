/** What the database creation reads from DATABASE_URL, and what it tells an operator. */
import fc from 'fast-check';

import { databaseAddress, DatabaseCreationError, quoteIdentifier } from './create-database';

describe('databaseAddress', () => {
  it('reads host, port, user and the decoded database name', () => {
    expect(
      databaseAddress('postgres://app:pw@db.internal:5433/Sec%20%22ure%22?sslmode=require'),
    ).toEqual({
      host: 'db.internal',
      port: 5433,
      user: 'app',
      database: 'Sec "ure"',
    });
  });

  it("uses the user's name for a URL without a database, as libpq does", () => {
    expect(databaseAddress('postgres://app@db.internal/').database).toBe('app');
  });
});

describe('quoteIdentifier', () => {
  it('doubles every double quote inside the quotes, so any name reads back exactly', () => {
    fc.assert(
      fc.property(fc.string(), (name) => {
        const quoted = quoteIdentifier(name);
        expect(quoted.startsWith('"') && quoted.endsWith('"')).toBe(true);
        const inner = quoted.slice(1, -1);
        expect(inner.replaceAll('""', '')).not.toContain('"');
        expect(inner.replaceAll('""', '"')).toBe(name);
      }),
    );
  });
});

describe('DatabaseCreationError', () => {
  it('names the database, the server, the role and the commands that create it', () => {
    const error = new DatabaseCreationError(
      { host: '10.0.0.5', port: 5432, user: 'securechat', database: 'securechat' },
      'permission denied to create database',
    );
    expect(error.code).toBe('database_missing');
    expect(error.message).toContain('database "securechat" does not exist on 10.0.0.5:5432');
    expect(error.message).toContain('permission denied to create database');
    expect(error.message).toContain(
      '  createdb -h 10.0.0.5 -p 5432 -U postgres -O securechat securechat\n',
    );
    expect(error.message).toContain('CREATE DATABASE "securechat" OWNER "securechat";');
  });

  it('quotes unusual names for the shell and for SQL', () => {
    const error = new DatabaseCreationError(
      { host: 'db', port: 5432, user: "o'brien", database: 'chat "prod"; rm -rf ~' },
      'permission denied to create database',
    );
    expect(error.message).toContain(
      `createdb -h db -p 5432 -U postgres -O 'o'\\''brien' 'chat "prod"; rm -rf ~'\n`,
    );
    expect(error.message).toContain(`CREATE DATABASE "chat ""prod""; rm -rf ~" OWNER "o'brien";`);
  });
});
